"""An endpoint's Deployment and Service are created first (a POST, no read before it), read only
when the name is taken (:mod:`modelyard.controllers.child_writes`): a same-named object of
anyone else's is found by the 409 and left untouched, and a child created with a POST is handed
to the operator's server-side apply, so a field later dropped from the spec leaves it. The real
operator on the local control plane."""

from __future__ import annotations

import json
from typing import Any

from opkit import apply, conflict_of, entry_and_endpoint, get

from kit import wait_for


def _env(deployment: dict[str, Any] | None) -> dict[str, Any]:
    containers = ((deployment or {}).get("spec") or {}).get("template", {}).get("spec", {}).get("containers")
    return {e["name"]: e.get("value") for e in (containers or [{}])[0].get("env") or []}


def test_a_foreign_deployment_found_by_the_409_is_left_untouched(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    """The foreign Deployment has none of the operator's labels (no watch reports it): the
    operator's create gets 409 AlreadyExists, then it reads it and reports the conflict."""
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "chat", "namespace": namespace, "labels": {"app": "theirs"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "theirs"}},
            "template": {
                "metadata": {"labels": {"app": "theirs"}},
                "spec": {"containers": [{"name": "theirs", "image": "example.com/theirs:1"}]},
            },
        },
    }
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    before = local_cluster.kube.request("POST", path, foreign)
    entry = f"foreign-{namespace}"
    apply(local_cluster, entry_and_endpoint(namespace, entry))
    status = conflict_of(local_cluster, namespace)
    assert status["phase"] == "Pending" and "Deployment" in status["message"]
    after = get(local_cluster, f"{path}/chat")
    assert after is not None and not after["metadata"].get("ownerReferences")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]  # its spec never written
    assert "modelyard-operator" not in {m["manager"] for m in after["metadata"]["managedFields"]}
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "example.com/theirs:1"
    local_cluster.kubectl("delete", "modelentry", entry)


def test_a_field_dropped_from_the_spec_leaves_a_created_child(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    """Created with a POST (fields under an Update entry), applied after a spec change: without
    the handover to the apply, the dropped env var would stay, owned by the POST."""
    entry = f"dropped-{namespace}"
    extra = "replicas: 1, resources: {gpus: 0}, env: [{name: EXTRA_SETTING, value: 'on'}]"
    apply(local_cluster, entry_and_endpoint(namespace, entry, endpoint_spec=extra))
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/chat"
    wait_for(lambda: _env(get(local_cluster, path)).get("EXTRA_SETTING") == "on", 15, "the env var applied")
    patch = json.dumps({"spec": {"env": None, "engineArgs": {"dtype": "float32"}}})
    local_cluster.kubectl("patch", "modelendpoint", "chat", "-n", namespace, "--type", "merge", "-p", patch)
    rolled = wait_for(
        lambda: (d := get(local_cluster, path)) and "--dtype" in json.dumps(d["spec"]["template"]) and d,
        15,
        "the spec change applied",
    )
    assert "EXTRA_SETTING" not in _env(rolled)
    managers = {(m["manager"], m["operation"]) for m in rolled["metadata"]["managedFields"]}
    assert ("modelyard-operator", "Update") not in managers and ("modelyard-operator", "Apply") in managers
    local_cluster.kubectl("delete", "modelentry", entry)
