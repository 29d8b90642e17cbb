"""A pod asking for more GPUs than any node has stays Pending, and the real scheduler says why."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def test_pod_needing_more_gpus_than_any_node_is_unschedulable(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "greedy"},
        "spec": {"containers": [{
            "name": "main", "image": "none", "command": ["sleep", "60"],
            "resources": {"limits": {"nvidia.com/gpu": "8"}},
        }]},
    }
    kube.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)

    def scheduled_condition() -> dict[str, Any] | None:
        status = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/greedy")["status"]
        return next((c for c in status.get("conditions") or []
                     if c["type"] == "PodScheduled"), None)

    condition = wait(scheduled_condition, 30, "a PodScheduled condition")
    assert condition["status"] == "False"
    assert condition["reason"] == "Unschedulable"
    assert "nvidia.com/gpu" in condition["message"]
    status = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/greedy")["status"]
    assert status["phase"] == "Pending"
