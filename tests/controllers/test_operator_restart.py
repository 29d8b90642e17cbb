"""The operator killed mid-reconcile converges after a restart, with no duplicate objects."""

from __future__ import annotations

import time
from typing import Any

from opkit import apply, status_of

from kit import wait_for


def test_killed_operator_converges_without_duplicates(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    model = f"restart-{namespace}"
    manifests = [
        f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {model}}}
spec: {{source: {{provider: local, uri: "file:///nonexistent"}}, category: text-llm}}
"""
    ]
    for i in range(5):
        manifests.append(
            f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: ep{i}, namespace: {namespace}}}
spec: {{model: {model}, replicas: 0}}
"""
        )
    assert apply(local_cluster, "---".join(manifests)).returncode == 0
    time.sleep(0.3)  # some reconciles have started, most have not
    operator.kill()
    operator.start()
    for i in range(5):
        wait_for(
            lambda i=i: status_of(local_cluster, namespace, f"ep{i}").get("reason") == "ScaledToZero",
            60,
            f"ep{i}",
        )
    deployments = local_cluster.kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"]
    services = local_cluster.kube.get(f"/api/v1/namespaces/{namespace}/services")["items"]
    assert sorted(d["metadata"]["name"] for d in deployments) == [f"ep{i}" for i in range(5)]
    assert sorted(s["metadata"]["name"] for s in services) == [f"ep{i}" for i in range(5)]
    listed = wait_for(
        lambda: (
            len(
                (local_cluster.kube.get(f"/apis/modelyard.io/v1alpha1/modelentries/{model}") or {})
                .get("status", {})
                .get("endpoints")
                or []
            )
            == 5
        ),
        90,  # the new operator waits out the killed one's Lease, then a list-only change settles 30 s
        "the entry to list all five endpoints",
    )
    assert listed
    assert "modelyard_reconciles_total" in wait_for(operator.metrics, 10, "metrics")
    local_cluster.kubectl("delete", "modelentry", model)
