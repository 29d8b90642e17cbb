"""``kubectl logs`` reaches a local pod's output through the agent's kubelet endpoint."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def test_kubectl_logs_shows_the_process_output(
    local_cluster: Any, namespace: str, pods: Any, wait: Any
) -> None:
    pods.create("talker", {"command": ["python", "-c", "for i in range(3): print('line', i)"]},
                policy="Never")
    wait(lambda: pods.status("talker").get("phase") == "Succeeded", 30, "the pod to succeed")

    logs = local_cluster.kubectl("logs", "-n", namespace, "talker")
    assert logs.stdout.splitlines() == ["line 0", "line 1", "line 2"]
    tail = local_cluster.kubectl("logs", "-n", namespace, "talker", "--tail=1")
    assert tail.stdout.splitlines() == ["line 2"]


SCRIPT = """
import os, sys, time
print("pid", os.getpid(), flush=True)
if not os.path.exists("/state/crashed"):
    open("/state/crashed", "w").close()
    sys.exit(1)
time.sleep(300)
"""


def test_kubectl_logs_previous_shows_the_run_before_a_restart(
    local_cluster: Any, namespace: str, pods: Any, wait: Any
) -> None:
    pods.create("restarter", {
        "volumeMounts": [{"name": "state", "mountPath": "/state"}],
        # crash once, then stay up: the second run is "current", the first "previous"
        "command": ["python", "-c", SCRIPT]}, volumes=[{"name": "state", "emptyDir": {}}])

    def last_run() -> dict[str, Any] | None:
        status = pods.main("restarter")
        terminated = status.get("lastState", {}).get("terminated")
        return terminated if status.get("restartCount", 0) >= 1 and terminated else None

    terminated = wait(last_run, 30, "a restart")
    pid = terminated["containerID"].removeprefix("modelyard://")
    previous = local_cluster.kubectl("logs", "-n", namespace, "restarter", "--previous")
    assert previous.stdout.splitlines() == [f"pid {pid}"]
    current = wait(lambda: local_cluster.kubectl("logs", "-n", namespace, "restarter").stdout,
                   10, "the second run's log")
    assert current.splitlines() != [f"pid {pid}"]
