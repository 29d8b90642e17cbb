"""TrainingJob -> the batch Job that runs ``modelyard train`` with the trainer's merged config
(pure). What the Job and its pods say back (phase, progress) is :mod:`.training_status`'s; the
ModelEntry a finished job registers is :mod:`.registration`'s.

The merged config travels in the pod template's annotation ``wire.TRAINER_CONFIG`` and reaches
the trainer as a file through a downward-API volume: the operator needs no ConfigMap rights in
tenant namespaces for it (least privilege, docs/security.md). The trainer pod mounts no
service-account token: it never talks to the API server (the operator polls its ``/progress``).
"""

from __future__ import annotations

import json
from typing import Any

from modelyard import api
from modelyard.api import training_job, wire
from modelyard.builders import labels, security, settings

CONFIG_DIR = "/etc/modelyard"
"""Where the trainer's config.json is mounted (from the ``wire.TRAINER_CONFIG`` annotation)."""
SCRATCH = "/scratch"
"""Writable scratch (HOME, TMPDIR) under a read-only root filesystem."""


def _local(uri: str, root: str) -> str:
    """A dataset's or output's path in the trainer pod (claims mounted at ``root/<claim>``)."""
    return wire.local_path(uri, root) or uri


def _dataset_path(job: api.TrainingJob) -> str:
    dataset = job.spec.dataset
    root = wire.DATA_ROOT
    return _local(dataset.uri, root) if dataset.uri else f"{root}/configmap/dataset.jsonl"


def trainer_config(
    job: api.TrainingJob, entry: api.ModelEntry, effective: training_job.EffectiveConfig
) -> dict[str, Any]:
    """What the trainer reads: the model, the data, the merged hyperparameters, the output."""
    data: dict[str, Any] = {"format": job.spec.dataset.format, "path": _dataset_path(job)}
    output = job.spec.output
    return {
        "trainingJob": {"namespace": job.namespace, "name": job.name},
        "model": {
            "name": entry.name,
            "source": entry.spec.source.to_wire(),
            "architecture": entry.spec.architecture,
        },
        "method": job.spec.method,
        "dataset": data,
        "hyperparameters": effective.hyperparameters.to_wire() if effective.hyperparameters else {},
        "lora": effective.lora.to_wire() if effective.lora and job.spec.method != "full" else None,
        "output": {
            "path": _local(output.uri, wire.OUTPUT_ROOT),
            "uri": output.uri,
            "register": output.register_as.to_wire() if output.register_as else None,
        },
    }


def config_text(config: dict[str, Any]) -> str:
    """The trainer config as the trainer reads it (stable bytes: sorted keys)."""
    return json.dumps(config, indent=2, sort_keys=True)


def build_job(
    job: api.TrainingJob, cfg: settings.Settings, config: dict[str, Any], *, owner_uid: str
) -> dict[str, Any]:
    """The batch Job; its pod restarts resume from the last checkpoint in the output.

    ``config`` is :func:`trainer_config`'s document, mounted at ``CONFIG_DIR/config.json``."""
    name = job.name
    pod_labels = labels.training_labels(name, job.spec.model)
    # Paths also go on the command line: a runner that maps mounts (the local node agent)
    # rewrites arguments, never the config file's content.
    data_path, output_path = _dataset_path(job), _local(job.spec.output.uri, wire.OUTPUT_ROOT)
    volumes: list[dict[str, Any]] = [
        {
            "name": "config",
            "downwardAPI": {
                "items": [
                    {
                        "path": "config.json",
                        "fieldRef": {"fieldPath": f"metadata.annotations['{wire.TRAINER_CONFIG}']"},
                    }
                ]
            },
        },
        {"name": "cache", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "cache", "mountPath": cfg.cache_dir},
        {"name": "tmp", "mountPath": SCRATCH},
    ]
    dataset = job.spec.dataset
    if dataset.config_map is not None:
        volumes.append(
            {
                "name": "dataset",
                "configMap": {
                    "name": dataset.config_map.name,
                    "items": [{"key": dataset.config_map.key, "path": "dataset.jsonl"}],
                },
            }
        )
        mounts.append({"name": "dataset", "mountPath": f"{wire.DATA_ROOT}/configmap", "readOnly": True})
    elif claim := wire.pvc_claim(dataset.uri or ""):
        volumes.append({"name": "dataset", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        mounts.append({"name": "dataset", "mountPath": f"{wire.DATA_ROOT}/{claim}", "readOnly": True})
    if claim := wire.pvc_claim(job.spec.output.uri):
        volumes.append({"name": "output", "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": "output", "mountPath": f"{wire.OUTPUT_ROOT}/{claim}"})
    resources = job.spec.resources
    gpus = resources.gpus if resources is not None and resources.gpus is not None else 1
    requests = {"cpu": (resources.cpu if resources and resources.cpu else cfg.default_cpu)}
    requests["memory"] = resources.memory if resources and resources.memory else cfg.default_memory
    limits = {"memory": requests["memory"]}
    if gpus:
        requests[wire.GPU_RESOURCE] = limits[wire.GPU_RESOURCE] = str(gpus)
    container = {
        "name": "trainer",
        "image": job.spec.image or cfg.runtime_image,
        "command": list(cfg.train_command),
        "args": ["--config", f"{CONFIG_DIR}/config.json", "--dataset", data_path, "--output", output_path],
        "env": [
            {"name": "HF_HOME", "value": f"{cfg.cache_dir}/huggingface"},
            {"name": "HOME", "value": SCRATCH},
            {"name": "TMPDIR", "value": SCRATCH},
            {"name": wire.PROGRESS_PORT_ENV, "value": str(wire.PROGRESS_PORT)},
            {"name": wire.POD_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [{"name": wire.PROGRESS_PORT_NAME, "containerPort": wire.PROGRESS_PORT, "protocol": "TCP"}],
        "resources": {"requests": requests, "limits": limits},
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": security.container_context(cfg),
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
        "securityContext": security.pod_context(cfg),
        "automountServiceAccountToken": False,
    }
    if resources is not None and resources.gpu_type:
        pod_spec["nodeSelector"] = {wire.GPU_PRODUCT: resources.gpu_type}
    if gpus:
        pod_spec["tolerations"] = [{"key": wire.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    spec: dict[str, Any] = {
        "backoffLimit": job.spec.backoff_limit,
        # Retries are for crashes and lost pods (they resume); a bad dataset fails at once.
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": "trainer",
                        "operator": "In",
                        "values": [wire.EXIT_UNRECOVERABLE],
                    },
                }
            ]
        },
        "template": {
            "metadata": {"labels": pod_labels, "annotations": {wire.TRAINER_CONFIG: config_text(config)}},
            "spec": pod_spec,
        },
    }
    if job.spec.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = job.spec.active_deadline_seconds
    if job.spec.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = job.spec.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": job.namespace,
            "labels": pod_labels,
            "ownerReferences": [labels.owner_reference("TrainingJob", name, owner_uid)],
        },
        "spec": spec,
    }
