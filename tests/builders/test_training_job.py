"""A TrainingJob becomes a ConfigMap with the merged config and a batch Job running the trainer."""

from __future__ import annotations

import json

from factories import entry

from modelyard import api
from modelyard.api import training_job
from modelyard.builders import settings, training

CFG = settings.Settings()


def _job(**spec: object) -> api.TrainingJob:
    body = {
        "model": "llama",
        "dataset": {"configMap": {"name": "data", "key": "train.jsonl"}},
        "output": {"uri": "pvc://out/run1"},
        **spec,
    }
    return api.TrainingJob.model_validate({"metadata": {"name": "tune", "namespace": "ml"}, "spec": body})


def test_config_map_holds_the_effective_config() -> None:
    effective = training_job.EffectiveConfig.model_validate(
        {"hyperparameters": {"learningRate": 1e-4, "numEpochs": 1}, "lora": {"r": 8}}
    )
    config = training.trainer_config(_job(), entry(), effective)
    cm = training.build_config_map(_job(), config, owner_uid="u")
    data = json.loads(cm["data"]["config.json"])
    assert data["hyperparameters"] == {"learningRate": 1e-4, "numEpochs": 1.0}
    assert data["lora"] == {"r": 8}
    assert data["dataset"]["path"] == "/data/configmap/dataset.jsonl"
    assert data["output"]["path"] == "/output/out/run1"


def test_job_runs_the_trainer_with_backoff_and_mounts() -> None:
    job = training.build_job(
        _job(backoffLimit=3, activeDeadlineSeconds=600, resources={"gpus": 0}), CFG, owner_uid="u"
    )
    assert job["spec"]["backoffLimit"] == 3 and job["spec"]["activeDeadlineSeconds"] == 600
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["modelyard", "train"]
    assert container["args"] == ["--config", "/etc/modelyard/config.json"]
    assert pod["restartPolicy"] == "Never"
    assert {v["name"] for v in pod["volumes"]} == {"config", "cache", "tmp", "dataset", "output"}
    assert "nvidia.com/gpu" not in container["resources"]["requests"]


def test_phase_from_the_job() -> None:
    assert training.job_phase(None)[0] == "Pending"
    assert training.job_phase({"status": {"active": 1}})[0] == "Running"
    stuck = {
        "status": {
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "pvc"}
            ]
        }
    }
    assert training.job_phase({"status": {"active": 1}}, [stuck]) == (
        "Pending",
        "Unschedulable",
        "Unschedulable: pvc",
    )
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert training.job_phase(done)[0] == "Succeeded"
    failed = {
        "status": {
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many"}
            ]
        }
    }
    pod = {
        "metadata": {"creationTimestamp": "2026"},
        "status": {
            "containerStatuses": [{"state": {"terminated": {"exitCode": 2, "message": "line 7: not JSON"}}}]
        },
    }
    assert training.job_phase(failed, [pod]) == (
        "Failed",
        "BackoffLimitExceeded",
        "exit code 2: line 7: not JSON",
    )
