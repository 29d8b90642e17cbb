"""restartPolicy, CrashLoopBackOff, liveness probes and termination messages behave like a
kubelet's, so the operator can surface the real reason a pod does not come up."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def _pod(name: str, container: dict[str, Any], policy: str = "Always") -> dict[str, Any]:
    container = {"name": "main", "image": "ignored", **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": policy, "terminationGracePeriodSeconds": 1,
                     "containers": [container]}}


def test_crashing_container_backs_off_with_restart_count_and_log_message(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    pods = f"/api/v1/namespaces/{namespace}/pods"
    kube.request("POST", pods, _pod("crasher", {
        "command": ["python", "-c", "import sys; print('model load failed: no GPU'); sys.exit(3)"],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }))

    def crash_looping() -> dict[str, Any] | None:
        statuses = kube.request("GET", f"{pods}/crasher")["status"].get("containerStatuses")
        status = (statuses or [{}])[0]
        waiting = status.get("state", {}).get("waiting", {})
        ok = status.get("restartCount", 0) >= 2 and waiting.get("reason") == "CrashLoopBackOff"
        return status if ok else None

    status = wait(crash_looping, 30, "CrashLoopBackOff with 2 restarts")
    last = status["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"
    assert "model load failed: no GPU" in last["message"]
    assert kube.request("GET", f"{pods}/crasher")["status"]["phase"] == "Running"


def test_failing_liveness_probe_restarts_the_container(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    pods = f"/api/v1/namespaces/{namespace}/pods"
    kube.request("POST", pods, _pod("unhealthy", {
        "command": ["sleep", "300"],
        "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                          "failureThreshold": 1},
    }))

    def restarted() -> bool:
        statuses = kube.request("GET", f"{pods}/unhealthy")["status"].get("containerStatuses")
        return bool(statuses) and statuses[0]["restartCount"] >= 1

    wait(restarted, 30, "a liveness restart")
    last = kube.request("GET", f"{pods}/unhealthy")["status"]["containerStatuses"][0]
    assert last["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM


def test_fake_pods_are_running_and_ready_without_a_process(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    pods = f"/api/v1/namespaces/{namespace}/pods"
    pod = _pod("vllm", {"command": ["vllm", "serve", "not-installed-here"]})
    pod["metadata"]["annotations"] = {"modelyard.io/fake": "true"}
    kube.request("POST", pods, pod)

    def ready() -> dict[str, Any] | None:
        status = kube.request("GET", f"{pods}/vllm")["status"]
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        return status if conditions.get("Ready") == "True" else None

    status = wait(ready, 30, "the fake pod to be Ready")
    assert status["phase"] == "Running" and status["podIP"].startswith("127.")
    assert local_cluster.agent.pids()[f"{namespace}/vllm"] == []


def test_persistent_volume_claims_bind_to_local_directories(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    base = f"/api/v1/namespaces/{namespace}"
    kube.request("POST", f"{base}/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "cache"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}})
    pod = _pod("writer", {"command": ["sh", "-c", "echo weights > /models/w.bin"],
                          "volumeMounts": [{"name": "cache", "mountPath": "/models"}]},
               policy="Never")
    pod["spec"]["volumes"] = [{"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}]
    kube.request("POST", f"{base}/pods", pod)

    wait(lambda: kube.request("GET", f"{base}/pods/writer")["status"].get("phase")
         == "Succeeded", 40, "the writer pod to succeed")
    claim = kube.request("GET", f"{base}/persistentvolumeclaims/cache")
    assert claim["status"]["phase"] == "Bound"
    volume = kube.request("GET", f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    with open(f"{volume['spec']['hostPath']['path']}/w.bin") as handle:
        assert handle.read() == "weights\n"


def test_startup_probe_gates_readiness_and_sidecars_run_beside_the_app(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    pods = f"/api/v1/namespaces/{namespace}/pods"
    pod = _pod("slow-start", {
        "command": ["sh", "-c", "sleep 2; touch /work/loaded; exec sleep 300"],
        "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        "startupProbe": {"exec": {"command": ["test", "-f", "/work/loaded"]},
                         "periodSeconds": 1, "failureThreshold": 30},
    })
    pod["spec"]["volumes"] = [{"name": "work", "emptyDir": {}}]
    pod["spec"]["initContainers"] = [{
        "name": "sidecar", "image": "ignored", "restartPolicy": "Always",
        "command": ["sleep", "300"]}]
    kube.request("POST", pods, pod)

    def main_status() -> dict[str, Any]:
        status = kube.request("GET", f"{pods}/slow-start")["status"]
        return next(iter(status.get("containerStatuses") or []), {})

    wait(lambda: "running" in main_status().get("state", {}), 20, "the app container to run")
    early = main_status()
    assert early["started"] is False and early["ready"] is False  # still loading
    wait(lambda: main_status().get("ready"), 20, "readiness after the startup probe")
    status = kube.request("GET", f"{pods}/slow-start")["status"]
    sidecar = status["initContainerStatuses"][0]
    assert "running" in sidecar["state"]
    assert len(local_cluster.agent.pids()[f"{namespace}/slow-start"]) == 2


def test_deletion_runs_the_pre_stop_hook_before_sigterm(
    local_cluster: Any, namespace: str, wait: Any, tmp_path: Any
) -> None:
    kube = local_cluster.kube
    pods = f"/api/v1/namespaces/{namespace}/pods"
    pod = _pod("drainer", {
        "command": ["python", "-c", "import signal, sys, time\n"
                    "signal.signal(signal.SIGTERM, lambda *a: (open('/out/sigterm', 'w'), "
                    "sys.exit(0)))\nopen('/out/started', 'w')\ntime.sleep(300)"],
        "volumeMounts": [{"name": "out", "mountPath": "/out"}],
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo drained > /out/prestop"]}}},
    })
    pod["spec"]["terminationGracePeriodSeconds"] = 10
    pod["spec"]["volumes"] = [{"name": "out", "hostPath": {"path": str(tmp_path)}}]
    kube.request("POST", pods, pod)
    wait(lambda: (tmp_path / "started").exists(), 20, "the process to handle SIGTERM")

    kube.request("DELETE", f"{pods}/drainer")
    wait(lambda: kube.get(f"{pods}/drainer") is None, 20, "the pod to be removed")
    assert (tmp_path / "prestop").read_text() == "drained\n"
    assert (tmp_path / "sigterm").exists()
