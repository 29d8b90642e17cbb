"""restartPolicy, CrashLoopBackOff, liveness probes and termination messages behave like a
kubelet's, so the operator can surface the real reason a pod does not come up."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def test_crashing_container_backs_off_with_restart_count_and_log_message(
    pods: Any, wait: Any
) -> None:
    pods.create("crasher", {
        "command": ["python", "-c", "import sys; print('model load failed: no GPU'); sys.exit(3)"],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    })

    def crash_looping() -> dict[str, Any] | None:
        status = pods.main("crasher")
        waiting = status.get("state", {}).get("waiting", {})
        ok = status.get("restartCount", 0) >= 2 and waiting.get("reason") == "CrashLoopBackOff"
        return status if ok else None

    status = wait(crash_looping, 30, "CrashLoopBackOff with 2 restarts")
    last = status["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"
    assert "model load failed: no GPU" in last["message"]
    assert pods.status("crasher")["phase"] == "Running"


def test_failing_liveness_probe_restarts_the_container(pods: Any, wait: Any) -> None:
    pods.create("unhealthy", {
        "command": ["sleep", "300"],
        "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                          "failureThreshold": 1},
    })
    wait(lambda: pods.main("unhealthy").get("restartCount", 0) >= 1, 30, "a liveness restart")
    last = pods.main("unhealthy")
    assert last["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM


def test_fake_pods_are_running_and_ready_without_a_process(
    local_cluster: Any, namespace: str, pods: Any, wait: Any
) -> None:
    pod = pods.manifest("vllm", {"command": ["vllm", "serve", "not-installed-here"]})
    pod["metadata"]["annotations"] = {"modelyard.io/fake": "true"}
    pods.post(pod)

    def ready() -> dict[str, Any] | None:
        status = pods.status("vllm")
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        return status if conditions.get("Ready") == "True" else None

    status = wait(ready, 30, "the fake pod to be Ready")
    assert status["phase"] == "Running" and status["podIP"].startswith("127.")
    assert local_cluster.agent.pids()[f"{namespace}/vllm"] == []


def test_persistent_volume_claims_bind_to_local_directories(
    local_cluster: Any, namespace: str, pods: Any, wait: Any
) -> None:
    kube = local_cluster.kube
    base = f"/api/v1/namespaces/{namespace}"
    kube.request("POST", f"{base}/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "cache"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}})
    pods.create("writer", {"command": ["sh", "-c", "echo weights > /models/w.bin"],
                           "volumeMounts": [{"name": "cache", "mountPath": "/models"}]},
                policy="Never",
                volumes=[{"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}])

    wait(lambda: pods.status("writer").get("phase") == "Succeeded", 40, "the writer pod to succeed")
    claim = kube.request("GET", f"{base}/persistentvolumeclaims/cache")
    assert claim["status"]["phase"] == "Bound"
    volume = kube.request("GET", f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    with open(f"{volume['spec']['hostPath']['path']}/w.bin") as handle:
        assert handle.read() == "weights\n"


def test_startup_probe_gates_readiness_and_sidecars_run_beside_the_app(
    local_cluster: Any, namespace: str, pods: Any, wait: Any
) -> None:
    pods.create("slow-start", {
        "command": ["sh", "-c", "sleep 2; touch /work/loaded; exec sleep 300"],
        "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        "startupProbe": {"exec": {"command": ["test", "-f", "/work/loaded"]},
                         "periodSeconds": 1, "failureThreshold": 30},
    }, volumes=[{"name": "work", "emptyDir": {}}], initContainers=[{
        "name": "sidecar", "image": "ignored", "restartPolicy": "Always",
        "command": ["sleep", "300"]}])

    wait(lambda: "running" in pods.main("slow-start").get("state", {}), 20, "the app container to run")
    early = pods.main("slow-start")
    assert early["started"] is False and early["ready"] is False  # still loading
    wait(lambda: pods.main("slow-start").get("ready"), 20, "readiness after the startup probe")
    status = pods.status("slow-start")
    sidecar = status["initContainerStatuses"][0]
    assert "running" in sidecar["state"]
    assert len(local_cluster.agent.pids()[f"{namespace}/slow-start"]) == 2


def test_deletion_runs_the_pre_stop_hook_before_sigterm(
    local_cluster: Any, pods: Any, wait: Any, tmp_path: Any
) -> None:
    pods.create("drainer", {
        "command": ["python", "-c", "import signal, sys, time\n"
                    "signal.signal(signal.SIGTERM, lambda *a: (open('/out/sigterm', 'w'), "
                    "sys.exit(0)))\nopen('/out/started', 'w')\ntime.sleep(300)"],
        "volumeMounts": [{"name": "out", "mountPath": "/out"}],
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo drained > /out/prestop"]}}},
    }, terminationGracePeriodSeconds=10, volumes=[{"name": "out", "hostPath": {"path": str(tmp_path)}}])
    wait(lambda: (tmp_path / "started").exists(), 20, "the process to handle SIGTERM")

    local_cluster.kube.request("DELETE", f"{pods.path}/drainer")
    wait(lambda: local_cluster.kube.get(f"{pods.path}/drainer") is None, 20, "the pod to be removed")
    assert (tmp_path / "prestop").read_text() == "drained\n"
    assert (tmp_path / "sigterm").exists()
