"""``--inference-pools`` on the real control plane, with the extension's InferencePool CRD
(vendored from its Go module, ``third_party/``): one pool per served name and namespace,
created with its first endpoint, following an endpoint that changes its served name, deleted
with its last endpoint. Without the CRD the operator logs one clear error and serves as ever.
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opkit import apply, get, status_of

from conftest import Operator, wait_until_serving
from kit import wait_for
from modelyard.builders import inference_pool

CRD = pathlib.Path(__file__).parent / "third_party" / "inference.networking.k8s.io_inferencepools.yaml"
CRD_NAME = "inferencepools.inference.networking.k8s.io"
POOLS = "/apis/inference.networking.k8s.io/v1/namespaces/{ns}/inferencepools"
SERVED_LABEL = "modelyard.io/served-name"
FLAGS = ("--inference-pools", "--inference-pool-epp", "{pool}-picker", "--inference-pool-epp-port", "9102")


@pytest.fixture
def pool_operator(operator_ready_cluster: Any, tmp_path: pathlib.Path) -> Iterator[Operator]:
    op = Operator(operator_ready_cluster.kubeconfig, tmp_path / "operator.log", FLAGS)
    op.start()
    wait_until_serving(operator_ready_cluster, op)
    yield op
    op.stop()
    print(f"operator log: {op.log}", file=sys.stderr)


def _manifests(namespace: str, entry: str, served: str, endpoints: dict[str, str | None]) -> str:
    docs = [
        f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {entry}}}
spec:
  source: {{provider: local, uri: "file:///nonexistent/model"}}
  architecture: LlamaForCausalLM
  servedName: "{served}"
"""
    ]
    for name, own in endpoints.items():
        served_name = f', servedName: "{own}"' if own else ""
        docs.append(
            f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{model: {entry}, replicas: 0{served_name}}}
"""
        )
    return "---".join(docs)


def _pool(cluster: Any, namespace: str, served: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = get(
        cluster, f"{POOLS.format(ns=namespace)}/{inference_pool.pool_name(served)}"
    )
    return found


def _owners(pool: dict[str, Any] | None) -> list[str]:
    return sorted(r["name"] for r in ((pool or {}).get("metadata") or {}).get("ownerReferences") or [])


def test_without_the_crd_the_operator_logs_one_error_and_serves_on(
    operator_ready_cluster: Any, tmp_path: pathlib.Path, namespace: str
) -> None:
    cluster = operator_ready_cluster
    cluster.kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", "--wait=true")
    op = Operator(cluster.kubeconfig, tmp_path / "operator.log", FLAGS)
    op.start()
    try:
        wait_until_serving(cluster, op)
        entry = f"pool-absent-{namespace}"
        result = apply(cluster, _manifests(namespace, entry, "absent-chat", {"a": None, "b": None}))
        assert result.returncode == 0, result.stderr
        wait_for(
            lambda: all(status_of(cluster, namespace, n).get("servedName") for n in ("a", "b")),
            30,
            "the endpoints' status",
        )
        deployment = wait_for(
            lambda: get(cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments/a"), 30, "a's Deployment"
        )
        assert deployment["spec"]["template"]["metadata"]["labels"][SERVED_LABEL] == "absent-chat"
        error = "the InferencePool CRD (inference.networking.k8s.io/v1) is not installed"
        wait_for(lambda: error in op.tail(200_000), 30, "the operator to say the CRD is missing")
        assert op.tail(200_000).count(error) == 1
        cluster.kubectl("delete", "modelentry", entry)
    finally:
        op.stop()


def test_a_pool_follows_the_endpoints_of_its_served_name(
    operator_ready_cluster: Any, namespace: str, request: pytest.FixtureRequest
) -> None:
    cluster = operator_ready_cluster
    cluster.kubectl("apply", "--server-side", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    wait_for(
        lambda: cluster.kubectl("get", "inferencepools", "-A", check=False).returncode == 0,
        60,
        "inferencepools to be listable",
    )
    request.getfixturevalue("pool_operator")  # started once the CRD is there

    served, entry = "Org/Chat-Model", f"pool-{namespace}"
    result = apply(cluster, _manifests(namespace, entry, served, {"a": None, "b": None}))
    assert result.returncode == 0, result.stderr

    # created: one pool for the served name, owned by both endpoints
    pool = wait_for(
        lambda: (found := _pool(cluster, namespace, served)) and _owners(found) == ["a", "b"] and found,
        30,
        "the pool owned by a and b",
    )
    name = inference_pool.pool_name(served)
    label = inference_pool.served_name_label(served)
    assert pool["spec"]["selector"]["matchLabels"][SERVED_LABEL] == label
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    ref = pool["spec"]["endpointPickerRef"]
    assert (ref["name"], ref["port"], ref["failureMode"]) == (f"{name}-picker", {"number": 9102}, "FailClose")
    for endpoint in ("a", "b"):
        deployment = get(cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments/{endpoint}")
        assert deployment is not None
        assert deployment["spec"]["template"]["metadata"]["labels"][SERVED_LABEL] == label

    # updated: b serves another name; it gets its own pool, and leaves the first
    result = apply(cluster, _manifests(namespace, entry, served, {"a": None, "b": "side-chat"}))
    assert result.returncode == 0, result.stderr
    wait_for(lambda: _owners(_pool(cluster, namespace, "side-chat")) == ["b"], 30, "b's own pool")
    wait_for(lambda: _owners(_pool(cluster, namespace, served)) == ["a"], 30, "the first pool to lose b")

    # deleted: with the last endpoint of each served name
    cluster.kubectl("delete", "modelendpoint", "a", "-n", namespace)
    wait_for(lambda: _pool(cluster, namespace, served) is None, 30, "the first pool to go with a")
    assert _pool(cluster, namespace, "side-chat") is not None
    cluster.kubectl("delete", "modelendpoint", "b", "-n", namespace)
    wait_for(lambda: _pool(cluster, namespace, "side-chat") is None, 30, "b's pool to go with b")
    cluster.kubectl("delete", "modelentry", entry)
