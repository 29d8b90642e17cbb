"""With NetworkPolicies on (``--network-policy-from``, the chart's ``networkPolicies.enabled``),
the policy the operator builds per endpoint is a child like the others: a NetworkPolicy of the
endpoint's name that the cluster admin put in the tenant's namespace (a platform rule) is never
applied over, and the endpoint says ``OwnershipConflict``, naming it."""

from __future__ import annotations

import json
import pathlib
import uuid
from typing import Any

from regkit import fingerprint, operator_with, trainable_entry, wait_for


def test_an_endpoint_named_like_a_platform_network_policy_leaves_it_untouched(
    tenants: Any, tiny_llama: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    cluster = tenants.alice.cluster
    model = f"np-{uuid.uuid4().hex[:6]}"
    assert tenants.admin.apply(trainable_entry(model, tiny_llama)).returncode == 0
    rule = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "guarded", "namespace": tenants.a},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},  # the platform's deny-all
    }  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=json.dumps(rule))
    path = f"/apis/networking.k8s.io/v1/namespaces/{tenants.a}/networkpolicies/guarded"
    before = fingerprint(cluster.kube.get(path))
    endpoint = {
        "apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint", "metadata": {"name": "guarded"},
        "spec": {"model": model, "resources": {"gpus": 0, "cpu": "100m", "memory": "1Gi"}},
    }  # fmt: skip
    flags = ("--network-policy-from=app.kubernetes.io/name=modelyard",)
    try:
        with operator_with(cluster, tmp_path / "operator.log", *flags):
            assert tenants.alice.apply(endpoint).returncode == 0

            def conflict() -> dict[str, Any] | None:
                done = tenants.alice.kubectl("get", "modelendpoint", "guarded", "-o", "json")
                status = json.loads(done.stdout).get("status") or {} if done.returncode == 0 else {}
                return status if status.get("reason") == "OwnershipConflict" else None

            status = wait_for(conflict, 60, "OwnershipConflict")
        assert (
            f"NetworkPolicy {tenants.a}/guarded already exists and is not this ModelEndpoint's"
            in (status["message"])
        )
        assert fingerprint(cluster.kube.get(path)) == before
        assert cluster.kube.get(f"/apis/apps/v1/namespaces/{tenants.a}/deployments/guarded") is None
    finally:
        tenants.admin.kubectl("delete", "modelentry", model, "--ignore-not-found")
