"""An endpoint becomes a Deployment and a Service; the entry lists it; deleting leaves nothing."""

from __future__ import annotations

from typing import Any

from opkit import apply, entry_and_endpoint, get, status_of

from kit import wait_for

_SPEC = "weight: 90, replicas: 1, resources: {gpus: 0}"


def test_children_are_created_owned_and_listed_on_the_entry(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    entry = f"life-{namespace}"
    result = apply(local_cluster, entry_and_endpoint(namespace, entry, endpoint_spec=_SPEC))
    assert result.returncode == 0, result.stderr
    deployment = wait_for(
        lambda: get(local_cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments/chat"),
        15,
        "the Deployment",
    )
    service = wait_for(
        lambda: get(local_cluster, f"/api/v1/namespaces/{namespace}/services/chat"), 15, "the Service"
    )
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelEndpoint", "chat", True)
    assert service["metadata"]["labels"]["modelyard.io/endpoint"] == "chat"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:6] == ["--model", "/nonexistent/model", "--served-name", entry, "--engine", "transformers"]
    listed = wait_for(
        lambda: (
            (get(local_cluster, f"/apis/modelyard.io/v1alpha1/modelentries/{entry}") or {})
            .get("status", {})
            .get("endpoints")
        ),
        45,  # a new endpoint not Ready is listed after the list's settle (context.ENTRY_LIST_SETTLE)
        "the entry's endpoint list",
    )
    assert listed == [{"namespace": namespace, "name": "chat", "ready": False}]
    status = status_of(local_cluster, namespace, "chat")
    assert status["servedName"] == entry and status["observedGeneration"] == 1
    assert status["url"] == f"http://chat.{namespace}.svc.cluster.local:8000/v1"

    local_cluster.kubectl("delete", "modelendpoint", "chat", "-n", namespace, "--wait=true")
    wait_for(
        lambda: (
            get(local_cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments/chat") is None
            and get(local_cluster, f"/api/v1/namespaces/{namespace}/services/chat") is None
        ),
        30,
        "the Deployment and Service to be garbage-collected",
    )
    wait_for(
        lambda: (
            (get(local_cluster, f"/apis/modelyard.io/v1alpha1/modelentries/{entry}") or {})
            .get("status", {})
            .get("endpoints")
            == []
        ),
        15,
        "the entry's endpoint list to empty",
    )
    local_cluster.kubectl("delete", "modelentry", entry)


def test_crashing_runtime_is_failed_with_the_crash_message(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    entry = f"crash-{namespace}"
    apply(local_cluster, entry_and_endpoint(namespace, entry, endpoint_spec=_SPEC))
    status = wait_for(
        lambda: (
            (s := status_of(local_cluster, namespace, "chat")).get("phase") in ("Failed", "Degraded") and s
        ),
        60,
        "the endpoint to fail",
    )
    assert status["reason"] in ("CrashLoopBackOff", "ContainerFailed")
    assert "exit code" in status["message"]
    degraded = {c["type"]: c["status"] for c in status["conditions"]}
    assert degraded == {"Available": "False", "Progressing": "False", "Degraded": "True"}
    local_cluster.kubectl("delete", "modelentry", entry)


def test_drift_is_restored_and_spec_changes_roll(local_cluster: Any, operator: Any, namespace: str) -> None:
    entry = f"drift-{namespace}"
    apply(local_cluster, entry_and_endpoint(namespace, entry, endpoint_spec=_SPEC))
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/chat"
    first = wait_for(lambda: get(local_cluster, path), 15, "the Deployment")
    local_cluster.kubectl("scale", "deployment", "chat", "-n", namespace, "--replicas=5")
    wait_for(
        lambda: (get(local_cluster, path) or {}).get("spec", {}).get("replicas") == 1,
        10,
        "replicas restored to 1",
    )
    local_cluster.kubectl("delete", "deployment", "chat", "-n", namespace, "--wait=false")
    wait_for(
        lambda: (d := get(local_cluster, path)) and d["metadata"]["uid"] != first["metadata"]["uid"],
        10,
        "the deleted Deployment to come back",
    )
    local_cluster.kubectl("delete", "service", "chat", "-n", namespace, "--wait=false")
    wait_for(
        lambda: get(local_cluster, f"/api/v1/namespaces/{namespace}/services/chat"), 10, "the Service back"
    )
    hash_before = get(local_cluster, path)["metadata"]["annotations"]["modelyard.io/spec-hash"]  # type: ignore[index]
    local_cluster.kubectl(
        "patch",
        "modelendpoint",
        "chat",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"spec":{"engineArgs":{"dtype":"float32"}}}',
    )
    rolled = wait_for(
        lambda: (
            (d := get(local_cluster, path))
            and d["metadata"]["annotations"]["modelyard.io/spec-hash"] != hash_before
            and d
        ),
        10,
        "a new spec hash",
    )
    args = rolled["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--dtype") + 1] == "float32"
    local_cluster.kubectl("delete", "modelentry", entry)
