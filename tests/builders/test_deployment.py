"""The runtime Deployment: GPUs, placement, probes, security, secrets, volumes, hash."""

from __future__ import annotations

from factories import endpoint, entry

from modelyard.api import wire
from modelyard.builders import deployment, service, settings

CFG = settings.Settings()


def _pod(dep: dict) -> dict:  # type: ignore[type-arg]
    return dep["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_gpu_requests_follow_tensor_parallel_size_and_gpu_type_selects_nodes() -> None:
    e = entry(runtime={"engine": "vllm"}, inferenceDefaults={"tensorParallelSize": 2})
    dep = deployment.build_deployment(endpoint(resources={"gpuType": "NVIDIA-L4"}), e, CFG, owner_uid="u")
    pod = _pod(dep)
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


def test_cpu_endpoint_asks_for_no_gpu() -> None:
    dep = deployment.build_deployment(endpoint(resources={"gpus": 0}), entry(), CFG, owner_uid="u")
    assert "nvidia.com/gpu" not in _pod(dep)["containers"][0]["resources"]["requests"]
    assert "tolerations" not in _pod(dep)


def test_non_root_read_only_root_and_probes() -> None:
    dep = deployment.build_deployment(endpoint(), entry(), CFG, owner_uid="u")
    pod = _pod(dep)
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/cache", "/tmp"}


def test_probes_run_every_second_within_the_same_startup_budget() -> None:
    """A cold start waits on the startup and readiness probes: each second, not each five, and
    the startup probe still allows ``startup_seconds`` in all."""
    cfg = settings.Settings(startup_seconds=600)
    container = _pod(deployment.build_deployment(endpoint(), entry(), cfg, owner_uid="u"))["containers"][0]
    startup, ready = container["startupProbe"], container["readinessProbe"]
    assert startup["periodSeconds"] == 1 and startup["periodSeconds"] * startup["failureThreshold"] == 600
    assert ready["periodSeconds"] == 1
    assert ready["periodSeconds"] * ready["failureThreshold"] >= 10  # a busy pod is not dropped at once


def test_hf_token_comes_from_a_secret_and_env_overrides_apply() -> None:
    ep = endpoint(
        hfTokenSecretRef={"name": "hf", "key": "token"},
        env=[{"name": "HF_HOME", "value": "/elsewhere"}, {"name": "A", "value": "1"}],
        modelCache={"claimName": "cache"},
    )
    pod = _pod(deployment.build_deployment(ep, entry(), CFG, owner_uid="u"))
    env = {v["name"]: v for v in pod["containers"][0]["env"]}
    assert env["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
    }
    assert env["HF_HOME"]["value"] == "/elsewhere"
    assert pod["containers"][0]["env"][0]["name"] == "POD_IP"
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "cache"}} in pod["volumes"]


def test_labels_owner_and_hash() -> None:
    dep = deployment.build_deployment(endpoint(), entry(), CFG, owner_uid="ep-uid")
    meta = dep["metadata"]
    assert meta["labels"][wire.ENDPOINT] == "chat" and meta["labels"][wire.MANAGED_BY] == "modelyard"
    assert meta["ownerReferences"][0]["uid"] == "ep-uid" and meta["ownerReferences"][0]["controller"] is True
    again = deployment.build_deployment(endpoint(), entry(), CFG, owner_uid="ep-uid")
    assert again == dep
    changed = deployment.build_deployment(endpoint(replicas=3), entry(), CFG, owner_uid="ep-uid")
    assert changed["metadata"]["annotations"][wire.SPEC_HASH] != meta["annotations"][wire.SPEC_HASH]


def test_service_selects_the_pods_and_carries_discovery_labels() -> None:
    svc = service.build_service(endpoint(), CFG, owner_uid="u", model="llama")
    assert svc["spec"]["selector"] == {wire.ENDPOINT: "chat"}
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert svc["metadata"]["labels"][wire.ENDPOINT] == "chat"
    assert service.service_url(endpoint(), CFG) == "http://chat.ml.svc.cluster.local:8000/v1"


def test_adapter_claims_are_mounted_once_and_the_live_set_is_a_config_map() -> None:
    """A fine-tuned entry's adapter claim and spec.adapterClaims are mounted read-only once each
    at /models/<claim>; the live adapters themselves are not in the pod: a ConfigMap volume
    (no subPath, so updates reach the running pod) holds them."""
    tuned = entry(
        "llama-tuned",
        source={"provider": "local", "uri": "pvc://weights/llama"},
        adapter={"baseModel": "llama", "uri": "pvc://out/run1"},
    )
    ep = endpoint(adapters=[{"name": "sql", "uri": "pvc://adapters/sql"},
                            {"name": "sql2", "uri": "pvc://out/run2"}],
                  adapterClaims=["adapters", "out"])
    pod = _pod(deployment.build_deployment(ep, tuned, CFG, owner_uid="u"))
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"weights": "weights", "adapters-0": "adapters", "adapters-1": "out"}
    container = pod["containers"][0]
    mounted = {m["mountPath"] for m in container["volumeMounts"] if m.get("readOnly")}
    assert mounted == {"/models/weights", "/models/adapters", "/models/out", "/etc/modelyard/adapters"}
    assert {"name": "adapter-set", "configMap": {"name": "chat-adapters", "optional": True}} in pod["volumes"]
    assert not any(m.get("subPath") for m in container["volumeMounts"] if m["name"] == "adapter-set")
    args = container["args"]
    loras = [args[i + 1] for i, a in enumerate(args) if a == "--lora"]
    assert loras == ["llama-tuned=/models/out/run1"]
    assert "sql" not in " ".join(args)


def test_scale_down_drains_a_pod_before_it_stops() -> None:
    dep = deployment.build_deployment(endpoint(), entry(), CFG, owner_uid="u")
    pod = _pod(dep)
    container = pod["containers"][0]
    # The sleep lets the EndpointSlices (and so the gateways) drop the pod before SIGTERM; the
    # grace period covers it and the runtime's drain of in-flight requests and streams.
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": wire.PRESTOP_SECONDS}}}
    assert pod["terminationGracePeriodSeconds"] > wire.PRESTOP_SECONDS + wire.DRAIN_SECONDS


def test_autoscaling_keeps_spec_replicas_as_the_deployment_size() -> None:
    scaled = endpoint(replicas=3, autoscaling={"minReplicas": 0, "maxReplicas": 5})
    assert deployment.build_deployment(scaled, entry(), CFG, owner_uid="u")["spec"]["replicas"] == 3
