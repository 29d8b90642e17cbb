"""ModelEndpoint (+ its ModelEntry) -> the runtime Deployment."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from modelyard import api
from modelyard.api import lora, wire
from modelyard.builders import adapters, inference_pool, labels, runtime_args, security, settings

TERMINATION_GRACE_SECONDS = wire.PRESTOP_SECONDS + wire.DRAIN_SECONDS + 5
"""preStop sleep, then the runtime's drain of in-flight requests and streams, then a margin."""


def resolved_engine(entry: api.ModelEntry, endpoint: api.ModelEndpoint) -> str:
    return endpoint.spec.engine or entry.spec.engine


def served_name(entry: api.ModelEntry, endpoint: api.ModelEndpoint) -> str:
    return endpoint.spec.served_name or entry.spec.served_name or entry.spec.source.repo or entry.name


def gpu_count(entry: api.ModelEntry, endpoint: api.ModelEndpoint) -> int:
    """GPUs per replica: as given, else the tensor-parallel size."""
    resources = endpoint.spec.resources
    if resources is not None and resources.gpus is not None:
        return resources.gpus
    return runtime_args.tensor_parallel_size(runtime_args.engine_options(entry, endpoint))


def spec_hash(obj: dict[str, Any]) -> str:
    """A short digest of a built object, stable across runs (keys sorted)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _env(endpoint: api.ModelEndpoint, cfg: settings.Settings, engine: str) -> list[dict[str, Any]]:
    env: dict[str, dict[str, Any]] = {
        wire.POD_IP_ENV: {"name": wire.POD_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        "HF_HOME": {"name": "HF_HOME", "value": f"{cfg.cache_dir}/huggingface"},
        "HOME": {"name": "HOME", "value": "/tmp"},
    }
    if engine == "vllm":  # load_lora_adapter / unload_lora_adapter answer only with this
        name = lora.VLLM_RUNTIME_LORA_ENV
        env[name] = {"name": name, "value": "True"}
    token = endpoint.spec.hf_token_secret_ref
    if token is not None:
        env["HF_TOKEN"] = {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}},
        }
    for var in endpoint.spec.env or []:
        env[var.name] = var.to_wire()
    # POD_IP first: $(POD_IP) in args needs it defined; the rest sorted for determinism.
    first = env.pop(wire.POD_IP_ENV)
    return [first, *(env[k] for k in sorted(env))]


def _resources(endpoint: api.ModelEndpoint, gpus: int, cfg: settings.Settings) -> dict[str, Any]:
    res = endpoint.spec.resources
    requests: dict[str, str] = {
        "cpu": (res.cpu if res and res.cpu else cfg.default_cpu),
        "memory": (res.memory if res and res.memory else cfg.default_memory),
    }
    limits: dict[str, str] = {"memory": requests["memory"]}
    if gpus:
        requests[wire.GPU_RESOURCE] = str(gpus)
        limits[wire.GPU_RESOURCE] = str(gpus)
    return {"requests": requests, "limits": limits}


def _volumes(
    entry: api.ModelEntry, endpoint: api.ModelEndpoint, cfg: settings.Settings
) -> tuple[list[Any], list[Any]]:
    cache = endpoint.spec.model_cache
    cache_volume: dict[str, Any] = {"name": "model-cache"}
    if cache is not None:
        cache_volume["persistentVolumeClaim"] = {"claimName": cache.claim_name}
    else:
        cache_volume["emptyDir"] = {}
    volumes = [cache_volume, {"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [
        {
            "name": "model-cache",
            "mountPath": cfg.cache_dir,
            **({"subPath": cache.sub_path} if cache and cache.sub_path else {}),
        },
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    # Every claim the weights or an adapter may live on, mounted read-only at
    # wire.MODELS_ROOT/<claim> (where runtime_args points the runtime): the source's as
    # "weights", the others (a served adapter entry's, spec.adapterClaims) as "adapters-<i>" in
    # name order. Never the live adapter set itself, so changing it rolls nothing.
    claims = adapters.mounted_claims(entry, endpoint)
    weights = wire.pvc_claim(entry.spec.source.uri or "")
    others = [c for c in claims if c != weights]
    named = ([("weights", weights)] if weights else []) + [(f"adapters-{i}", c) for i, c in enumerate(others)]
    for volume, claim in named:
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        mounts.append({"name": volume, "mountPath": f"{wire.MODELS_ROOT}/{claim}", "readOnly": True})
    # The live adapter set: a ConfigMap the runtime re-reads (no subPath: those never update).
    volumes.append(
        {
            "name": "adapter-set",
            "configMap": {"name": adapters.config_map_name(endpoint.name), "optional": True},
        }
    )
    mounts.append({"name": "adapter-set", "mountPath": adapters.ADAPTERS_DIR, "readOnly": True})
    return volumes, mounts


def build_deployment(
    endpoint: api.ModelEndpoint, entry: api.ModelEntry, cfg: settings.Settings, *, owner_uid: str
) -> dict[str, Any]:
    """The Deployment that runs ``endpoint``'s runtime pods."""
    name, namespace = endpoint.name, endpoint.namespace
    engine = resolved_engine(entry, endpoint)
    gpus = gpu_count(entry, endpoint)
    pod_labels = labels.endpoint_labels(name, entry.name)
    if cfg.inference_pools is not None:  # the InferencePool of the served name selects on it
        pod_labels[wire.SERVED_NAME] = inference_pool.served_name_label(served_name(entry, endpoint))
    args = runtime_args.runtime_args(
        entry,
        endpoint,
        served_name=served_name(entry, endpoint),
        engine=engine,
        port=cfg.runtime_port,
        max_adapters=adapters.max_adapters(endpoint),
    )
    volumes, mounts = _volumes(entry, endpoint, cfg)
    # Probed every second, so a pod turns Ready within a second of its model answering (a cold
    # start from zero waits on this); ten failures in a row, not three, before a busy pod whose
    # event loop answers late is taken out of the Service.
    probe = {
        "httpGet": {"path": "/ready", "port": wire.HTTP_PORT},
        "periodSeconds": 1,
        "timeoutSeconds": 3,
        "failureThreshold": 10,
    }
    container = {
        "name": "runtime",
        "image": endpoint.spec.image or cfg.runtime_image,
        "command": list(cfg.runtime_command),
        "args": args,
        "env": _env(endpoint, cfg, engine),
        "ports": [{"name": wire.HTTP_PORT, "containerPort": cfg.runtime_port, "protocol": "TCP"}],
        "resources": _resources(endpoint, gpus, cfg),
        "volumeMounts": mounts,
        "startupProbe": {
            "httpGet": {"path": "/health", "port": wire.HTTP_PORT},
            "periodSeconds": 1,
            "failureThreshold": max(1, cfg.startup_seconds),
        },
        "readinessProbe": probe,
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": wire.HTTP_PORT},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": security.container_context(cfg),
        # Leave the EndpointSlices before SIGTERM: the gateways stop sending here first.
        "lifecycle": {"preStop": {"sleep": {"seconds": wire.PRESTOP_SECONDS}}},
    }
    node_selector = dict(endpoint.spec.node_selector or {})
    resources = endpoint.spec.resources
    if resources is not None and resources.gpu_type:
        node_selector[wire.GPU_PRODUCT] = resources.gpu_type
    tolerations = list(endpoint.spec.tolerations or [])
    if gpus:
        tolerations.append({"key": wire.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        "securityContext": security.pod_context(cfg),
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
    }
    if node_selector:
        pod_spec["nodeSelector"] = dict(sorted(node_selector.items()))
    if tolerations:
        pod_spec["tolerations"] = tolerations
    spec: dict[str, Any] = {
        "replicas": endpoint.spec.replicas,
        "selector": {"matchLabels": labels.selector(name)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1 if not gpus else 0, "maxUnavailable": 0 if not gpus else 1},
        },
        "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": pod_labels,
            "annotations": {wire.SPEC_HASH: spec_hash(spec)},
            "ownerReferences": [labels.owner_reference("ModelEndpoint", name, owner_uid)],
        },
        "spec": spec,
    }
