"""A TrainingJob becomes a batch Job running the trainer, its merged config in the pod template."""

from __future__ import annotations

import json

from factories import entry

from modelyard import api
from modelyard.api import training_job, wire
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


def test_pod_template_holds_the_effective_config() -> None:
    effective = training_job.EffectiveConfig.model_validate(
        {"hyperparameters": {"learningRate": 1e-4, "numEpochs": 1}, "lora": {"r": 8}}
    )
    config = training.trainer_config(_job(), entry(), effective)
    template = training.build_job(_job(), CFG, config, owner_uid="u")["spec"]["template"]
    data = json.loads(template["metadata"]["annotations"][wire.TRAINER_CONFIG])
    (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == "config"]
    (item,) = volume["downwardAPI"]["items"]
    assert item == {
        "path": "config.json",
        "fieldRef": {"fieldPath": f"metadata.annotations['{wire.TRAINER_CONFIG}']"},
    }
    assert data["hyperparameters"] == {"learningRate": 1e-4, "numEpochs": 1.0}
    assert data["lora"] == {"r": 8}
    assert data["dataset"]["path"] == "/data/configmap/dataset.jsonl"
    assert data["output"]["path"] == "/output/out/run1"


def test_job_runs_the_trainer_with_backoff_and_mounts() -> None:
    job = training.build_job(
        _job(backoffLimit=3, activeDeadlineSeconds=600, resources={"gpus": 0}), CFG, {}, owner_uid="u"
    )
    assert job["spec"]["backoffLimit"] == 3 and job["spec"]["activeDeadlineSeconds"] == 600
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["modelyard", "train"]
    assert container["args"] == [
        "--config", "/etc/modelyard/config.json",
        "--dataset", "/data/configmap/dataset.jsonl",
        "--output", "/output/out/run1",
    ]  # fmt: skip
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["tmp"] == "/scratch" and mounts["output"] == "/output/out"
    assert pod["restartPolicy"] == "Never"
    (rule,) = job["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [wire.EXIT_UNRECOVERABLE]
    assert {v["name"] for v in pod["volumes"]} == {"config", "cache", "tmp", "dataset", "output"}
    assert "nvidia.com/gpu" not in container["resources"]["requests"]


def test_trainer_serves_progress_on_its_pod_ip() -> None:
    pod = training.build_job(_job(), CFG, {}, owner_uid="u")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env[wire.PROGRESS_PORT_ENV]["value"] == str(wire.PROGRESS_PORT)
    assert container["ports"] == [{"name": "progress", "containerPort": 8001, "protocol": "TCP"}]


def test_trainer_pod_mounts_no_service_account_token() -> None:
    pod = training.build_job(_job(), CFG, {}, owner_uid="u")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
