"""Autoscaling against the real API server and the real operator: the CRD's rules name the
field, ``kubectl scale`` and an HPA's patch of /scale drive the Deployment, and the operator
follows the demand a gateway reports (a small HTTP server stands in for the gateway's /metrics;
the Kubernetes API is real)."""

from __future__ import annotations

import json
import pathlib
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import yaml
from opkit import GROUP_PATH, apply, endpoint, get, status_of

import kit
from conftest import Operator, wait_until_serving


class FakeGateway(BaseHTTPRequestHandler):
    """Serves ``modelyard_gateway_endpoint_demand`` with the values a test sets."""

    demand: dict[tuple[str, str], float] = {}
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            lines = [
                f'modelyard_gateway_endpoint_demand{{namespace="{ns}",endpoint="{name}"}} {value}'
                for (ns, name), value in sorted(self.demand.items())
            ]
        body = ("# TYPE modelyard_gateway_endpoint_demand gauge\n" + "\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass

    @classmethod
    def set(cls, namespace: str, name: str, value: float) -> None:
        with cls.lock:
            cls.demand[(namespace, name)] = value


@pytest.fixture(scope="module")
def scaling_operator(
    operator_ready_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """The operator, reading the fake gateway's demand every half second."""
    with kit.http_server(FakeGateway) as url:
        op = Operator(
            operator_ready_cluster.kubeconfig,
            tmp_path_factory.mktemp("operator") / "operator.log",
            ("--gateway-metrics-url", f"{url}/metrics", "--autoscale-interval", "0.5"),
        )
        op.start()
        wait_until_serving(operator_ready_cluster, op)
        yield op
        op.stop()
        print(f"operator log: {op.log}", file=sys.stderr)


def _entry(cluster: Any, name: str) -> None:
    manifest = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {name}}}
spec: {{source: {{provider: local, uri: "file:///nonexistent"}}, category: text-llm}}
"""
    assert apply(cluster, manifest).returncode == 0


def test_bad_autoscaling_is_denied_naming_the_field(
    local_cluster: Any, scaling_operator: Operator, namespace: str
) -> None:
    for autoscaling, field in (
        ("{minReplicas: 5, maxReplicas: 2}", "spec.autoscaling.minReplicas"),
        ("{maxReplicas: 0}", "spec.autoscaling.maxReplicas"),
        ("{maxReplicas: 2, targetRequests: 0}", "spec.autoscaling.targetRequests"),
    ):
        manifest = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: bad, namespace: {namespace}}}
spec: {{model: m, autoscaling: {autoscaling}}}
"""
        denied = apply(local_cluster, manifest)
        assert denied.returncode != 0
        assert field in denied.stderr, denied.stderr
    assert endpoint(local_cluster, namespace, "bad") == {}


def test_kubectl_scale_and_an_hpa_patch_drive_the_deployment(
    local_cluster: Any, scaling_operator: Operator, namespace: str
) -> None:
    model = f"scale-{namespace}"
    _entry(local_cluster, model)
    # Four GPUs fit no node: the pods stay Pending, so no runtime process starts for this test.
    manifest = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: web, namespace: {namespace}}}
spec: {{model: {model}, replicas: 1, resources: {{gpus: 4}}}}
"""
    assert apply(local_cluster, manifest).returncode == 0
    deployment_path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
    kit.wait_for(lambda: get(local_cluster, deployment_path), 60, "the Deployment")
    local_cluster.kubectl("scale", "modelendpoint", "web", "-n", namespace, "--replicas=3")
    kit.wait_for(
        lambda: (get(local_cluster, deployment_path) or {}).get("spec", {}).get("replicas") == 3,
        60,
        "the Deployment at 3 replicas after kubectl scale",
    )
    scale_path = f"{GROUP_PATH}/namespaces/{namespace}/modelendpoints/web/scale"
    scale = kit.wait_for(
        lambda: (s := get(local_cluster, scale_path) or {}).get("status", {}).get("selector") and s,
        60,
        "the scale subresource to carry the selector",
    )
    assert scale["spec"]["replicas"] == 3
    assert scale["status"]["selector"] == "modelyard.io/endpoint=web"
    # What an HPA does: patch spec.replicas through /scale.
    local_cluster.kubectl(
        "patch", "modelendpoint", "web", "-n", namespace, "--subresource=scale", "--type=merge",
        "-p", json.dumps({"spec": {"replicas": 2}}),
    )  # fmt: skip
    kit.wait_for(
        lambda: (get(local_cluster, deployment_path) or {}).get("spec", {}).get("replicas") == 2,
        60,
        "the Deployment at 2 replicas after a patch of /scale",
    )
    assert endpoint(local_cluster, namespace, "web")["spec"]["replicas"] == 2


def _replicas(cluster: Any, namespace: str, name: str) -> int:
    return int(endpoint(cluster, namespace, name).get("spec", {}).get("replicas", -1))


def _scaling(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict((status_of(cluster, namespace, name) or {}).get("autoscaling") or {})


def test_operator_follows_gateway_demand(
    local_cluster: Any, scaling_operator: Operator, namespace: str
) -> None:
    # No ModelEntry: no Deployment, no pods; the autoscaler owns spec.replicas all the same.
    FakeGateway.set(namespace, "chat", 0)
    manifest = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: chat, namespace: {namespace}}}
spec:
  model: absent-{namespace}
  replicas: 1
  autoscaling: {{minReplicas: 0, maxReplicas: 4, targetRequests: 8, scaleDownDelaySeconds: 2}}
"""
    assert apply(local_cluster, manifest).returncode == 0
    kit.wait_for(lambda: _replicas(local_cluster, namespace, "chat") == 0, 60, "idle -> 0 replicas")
    # spec.replicas is patched first and the status a moment later: wait for both.
    scaled = kit.wait_for(
        lambda: (s := _scaling(local_cluster, namespace, "chat")).get("lastScaleReason")
        == "demand at most 0 for 2s: 1 -> 0" and s,
        30,
        "status.autoscaling to say why it scaled to 0",
    )
    assert scaled["lastScaleTime"]

    FakeGateway.set(namespace, "chat", 5)
    kit.wait_for(lambda: _replicas(local_cluster, namespace, "chat") == 1, 30, "demand 5 -> 1 replica")
    kit.wait_for(
        lambda: "waking" in _scaling(local_cluster, namespace, "chat").get("lastScaleReason", ""),
        30,
        "status.autoscaling to say it woke the endpoint",
    )

    FakeGateway.set(namespace, "chat", 20)
    kit.wait_for(lambda: _replicas(local_cluster, namespace, "chat") == 3, 30, "demand 20 -> 3 replicas")
    status = kit.wait_for(
        lambda: (s := status_of(local_cluster, namespace, "chat")["autoscaling"]).get("demand") == 20 and s,
        30,
        "status.autoscaling to show demand 20",
    )
    assert status["desiredReplicas"] == 3
    assert status["lastScaleReason"] == "demand 20 > 8 x 0 ready: 1 -> 3"
    metrics = scaling_operator.metrics()
    labels = {"namespace": namespace, "endpoint": "chat"}
    assert kit.metric(metrics, "modelyard_operator_autoscale_desired_replicas", **labels) == 3
    assert (
        kit.metric(metrics, "modelyard_operator_autoscale_scale_events_total", direction="up", **labels) == 2
    )

    FakeGateway.set(namespace, "chat", 0)
    kit.wait_for(lambda: _replicas(local_cluster, namespace, "chat") == 0, 60, "idle again -> 0")


def test_full_cluster_holds_the_replica_count(
    local_cluster: Any, scaling_operator: Operator, namespace: str
) -> None:
    model = f"full-{namespace}"
    _entry(local_cluster, model)
    FakeGateway.set(namespace, "big", 0)
    manifest = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: big, namespace: {namespace}}}
spec:
  model: {model}
  replicas: 1
  resources: {{gpus: 4}}
  autoscaling: {{minReplicas: 1, maxReplicas: 4, targetRequests: 8}}
"""
    assert apply(local_cluster, manifest).returncode == 0
    kit.wait_for(
        lambda: status_of(local_cluster, namespace, "big").get("reason") == "Unschedulable",
        60,
        "the endpoint to report Unschedulable",
    )
    # A round that saw both the full cluster and the demand has decided: it holds at 1.
    FakeGateway.set(namespace, "big", 21)
    status = kit.wait_for(
        lambda: (
            (s := status_of(local_cluster, namespace, "big")).get("autoscaling", {}).get("demand") == 21 and s
        ),
        30,
        "a round that saw demand 21",
    )
    assert status["reason"] == "Unschedulable"
    assert status["autoscaling"]["desiredReplicas"] == 1
    assert _replicas(local_cluster, namespace, "big") == 1


def test_the_hpa_example_drives_an_endpoint_through_scale(
    local_cluster: Any, scaling_operator: Operator, namespace: str
) -> None:
    """docs/examples/hpa/hpa.yaml's HPA, run by the control plane's own HPA controller: below
    its minReplicas it scales the endpoint up through /scale (no metrics server needed for that)."""
    example = pathlib.Path(__file__).resolve().parents[2] / "docs" / "examples" / "hpa" / "hpa.yaml"
    endpoint_doc, hpa = list(yaml.safe_load_all(example.read_text()))
    model = f"hpa-{namespace}"
    _entry(local_cluster, model)
    # The example's endpoint, on an entry of this test, with pods that never schedule (no runtime runs).
    endpoint_doc["spec"].update({"model": model, "resources": {"gpus": 4}})
    endpoint_doc["metadata"]["namespace"] = hpa["metadata"]["namespace"] = namespace
    assert apply(local_cluster, yaml.safe_dump_all([endpoint_doc, hpa])).returncode == 0
    name = endpoint_doc["metadata"]["name"]
    deployment_path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
    kit.wait_for(
        lambda: (
            (get(local_cluster, deployment_path) or {}).get("spec", {}).get("replicas")
            == hpa["spec"]["minReplicas"]
        ),
        120,
        "the HPA to scale the Deployment to its minReplicas through the endpoint's /scale",
    )
    assert endpoint(local_cluster, namespace, name)["spec"]["replicas"] == hpa["spec"]["minReplicas"]
