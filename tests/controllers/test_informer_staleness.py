"""Reconciles read from the watches (:mod:`modelyard.controllers.informer`), yet nothing they must
see is missed: a hand edit of a child is still undone, an entry's change still reaches its
endpoints, a same-named object no watch reports is still found before a child is created, and
kopf writes nothing onto endpoints and entries. The real operator on the local control plane."""

from __future__ import annotations

from typing import Any

from opkit import apply, conflict_of, entry_and_endpoint, get, status_of

from kit import wait_for

GROUP = "/apis/modelyard.io/v1alpha1"


def _args(deployment: dict[str, Any] | None) -> list[str]:
    return list(((deployment or {}).get("spec") or {}).get("template", {}).get("spec", {})
                .get("containers", [{}])[0].get("args") or [])  # fmt: skip


def test_a_hand_edit_of_a_child_is_undone(local_cluster: Any, operator: Any, namespace: str) -> None:
    entry = f"edit-{namespace}"
    apply(local_cluster, entry_and_endpoint(namespace, entry))
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/chat"
    built = wait_for(lambda: _args(get(local_cluster, path)), 15, "the Deployment")
    patch = '[{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": ["--edited"]}]'
    local_cluster.kubectl("patch", "deployment", "chat", "-n", namespace, "--type", "json", "-p", patch)
    wait_for(lambda: _args(get(local_cluster, path)) == built, 15, "the Deployment's args restored")

    service_path = f"/api/v1/namespaces/{namespace}/services/chat"
    selector = get(local_cluster, service_path)["spec"]["selector"]  # type: ignore[index]
    edit = '[{"op": "replace", "path": "/spec/selector", "value": {"app": "elsewhere"}}]'
    local_cluster.kubectl("patch", "service", "chat", "-n", namespace, "--type", "json", "-p", edit)
    wait_for(
        lambda: (get(local_cluster, service_path) or {}).get("spec", {}).get("selector") == selector,
        15,
        "the Service's selector restored",
    )
    local_cluster.kubectl("delete", "modelentry", entry)


def test_an_entry_change_reaches_its_endpoint(local_cluster: Any, operator: Any, namespace: str) -> None:
    entry = f"moves-{namespace}"
    apply(local_cluster, entry_and_endpoint(namespace, entry))
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/chat"
    wait_for(lambda: entry in _args(get(local_cluster, path)), 15, "the Deployment")
    renamed = f"{entry}-v2"
    apply(local_cluster, entry_and_endpoint(namespace, entry, served=renamed))
    args = wait_for(lambda: (a := _args(get(local_cluster, path))) and renamed in a and a, 15, "the new name")
    assert args[args.index("--served-name") + 1] == renamed
    wait_for(
        lambda: status_of(local_cluster, namespace, "chat").get("servedName") == renamed,
        15,
        "the endpoint's status to say the new name",
    )
    local_cluster.kubectl("delete", "modelentry", entry)


def test_a_same_named_object_no_watch_reports_is_not_taken(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    """The Service below has none of the operator's labels, so the informer never sees it: the
    operator reads before it creates, and leaves it alone."""
    foreign = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "chat", "namespace": namespace},
               "spec": {"ports": [{"port": 1234}]}}  # fmt: skip
    local_cluster.kube.request("POST", f"/api/v1/namespaces/{namespace}/services", foreign)
    entry = f"taken-{namespace}"
    apply(local_cluster, entry_and_endpoint(namespace, entry))
    status = conflict_of(local_cluster, namespace)
    assert status["phase"] == "Pending" and "Service" in status["message"]
    service = get(local_cluster, f"/api/v1/namespaces/{namespace}/services/chat")
    assert service is not None and not service["metadata"].get("ownerReferences")
    assert [p["port"] for p in service["spec"]["ports"]] == [1234]
    local_cluster.kubectl("delete", "modelentry", entry)


def test_kopf_writes_nothing_onto_endpoints_and_entries(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    entry = f"plain-{namespace}"
    apply(local_cluster, entry_and_endpoint(namespace, entry))
    wait_for(lambda: status_of(local_cluster, namespace, "chat").get("phase"), 15, "the endpoint's status")
    for path in (f"{GROUP}/namespaces/{namespace}/modelendpoints/chat", f"{GROUP}/modelentries/{entry}"):
        found = get(local_cluster, path) or {}
        annotations = found["metadata"].get("annotations") or {}
        assert not [key for key in annotations if "last-handled-configuration" in key or "kopf" in key]
        assert not found["metadata"].get("finalizers")
    local_cluster.kubectl("delete", "modelentry", entry)
