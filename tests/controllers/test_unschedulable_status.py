"""An endpoint asking for more GPUs than any node has says so, with the scheduler's words."""

from __future__ import annotations

from typing import Any

from opkit import apply, status_of, wait_for


def test_four_gpus_on_small_nodes_is_pending_unschedulable_until_fixed(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    entry = f"gpu-{namespace}"
    apply(
        local_cluster,
        f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {entry}}}
spec: {{source: {{provider: local, uri: "file:///nonexistent"}}, architecture: LlamaForCausalLM}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: big, namespace: {namespace}}}
spec: {{model: {entry}, resources: {{gpus: 4}}}}
""",
    )
    status = wait_for(
        lambda: (s := status_of(local_cluster, namespace, "big")).get("reason") == "Unschedulable" and s,
        30,
        "Unschedulable",
    )
    assert status["phase"] == "Pending"
    assert status["message"].startswith("Unschedulable: 0/")
    assert "Insufficient nvidia.com/gpu" in status["message"]
    local_cluster.kubectl(
        "patch",
        "modelendpoint",
        "big",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"spec":{"resources":{"gpus":1}}}',
    )
    fixed = wait_for(
        lambda: (s := status_of(local_cluster, namespace, "big")).get("reason") != "Unschedulable" and s,
        30,
        "the scheduler to place the pod",
    )
    assert fixed["observedGeneration"] == 2
    local_cluster.kubectl("delete", "modelentry", entry)
