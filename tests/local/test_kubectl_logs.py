"""``kubectl logs`` reaches a local pod's output through the agent's kubelet endpoint."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def test_kubectl_logs_shows_the_process_output(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    pods = f"/api/v1/namespaces/{namespace}/pods"
    kube.request("POST", pods, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": "ignored",
            "command": ["python", "-c", "for i in range(3): print('line', i)"]}]},
    })
    wait(lambda: kube.request("GET", f"{pods}/talker")["status"].get("phase") == "Succeeded",
         30, "the pod to succeed")

    logs = local_cluster.kubectl("logs", "-n", namespace, "talker")
    assert logs.stdout.splitlines() == ["line 0", "line 1", "line 2"]
    tail = local_cluster.kubectl("logs", "-n", namespace, "talker", "--tail=1")
    assert tail.stdout.splitlines() == ["line 2"]
