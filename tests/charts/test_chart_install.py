"""`helm install` of charts/modelyard with default values into a local control plane of its own:
the operator and the gateway come up as pods (run by the node agent as processes) with only the
chart's RBAC, the webhook answers through its Service, the operator reconciles; then `helm
upgrade` and `helm uninstall` (CRDs and custom resources stay, no webhook is left behind)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chartkit
import pytest

import kit
from kit import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NS = chartkit.NAMESPACE
ENTRY = """
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {name: %(name)s}
spec:
  source: {provider: local, uri: "file:///nonexistent/model"}
  category: %(category)s
  capabilities: {inference: %(inference)s}
"""
ENDPOINT = """
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {name: %(name)s, namespace: default}
spec: {model: %(model)s, replicas: 0, resources: {gpus: 0}}
"""


class Release:
    """The chart installed as release `modelyard` in `modelyard-system` of one cluster."""

    def __init__(self, cluster: Any, home: Path) -> None:
        self.cluster = cluster
        self.home = home

    def helm(self, *args: str, timeout: float = 420) -> Any:
        return chartkit.helm(*args, home=self.home, kubeconfig=self.cluster.kubeconfig, timeout=timeout)

    def get(self, path: str) -> Any:
        return self.cluster.kube.get(path)

    def deployment(self, name: str) -> Any:
        return self.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")

    def can(self, who: str, *args: str) -> bool:
        result = self.cluster.kubectl(
            "auth", "can-i", *args, f"--as=system:serviceaccount:{NS}:{who}", check=False
        )
        return result.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def release(own_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    state = tmp_path_factory.mktemp("chart-install")
    with own_cluster(state / "cluster", ["chart-node-1:1:NVIDIA-L4", "chart-node-2:0"]) as cluster:
        yield Release(cluster, state / "helm")


def test_install_with_default_values_brings_operator_and_gateway_to_ready(release: Release) -> None:
    started = time.monotonic()
    result = release.helm(
        "install", chartkit.RELEASE, str(chartkit.CHART), "--namespace", NS, "--create-namespace",
        "--wait", "--timeout", "300s",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    print(f"helm install --wait took {time.monotonic() - started:.1f}s")
    for name in ("modelyard-operator", "modelyard-gateway"):
        status = release.deployment(name)["status"]
        assert status.get("readyReplicas") == 1, (name, status)
    pods = release.get(f"/api/v1/namespaces/{NS}/pods")["items"]
    assert {p["spec"]["serviceAccountName"] for p in pods} == {"modelyard-operator", "modelyard-gateway"}
    # The operator holds its Lease (a Role in its namespace is all it has for that).
    lease = wait_for(
        lambda: release.get(f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/modelyard-operator"),
        120, "the operator's Lease",
    )  # fmt: skip
    assert lease["spec"]["holderIdentity"]


def test_rbac_is_least_privilege(release: Release) -> None:
    operator, gateway = "modelyard-operator", "modelyard-gateway"
    assert release.can(operator, "patch", "modelendpoints.modelyard.io/status", "-n", "default")
    assert release.can(operator, "create", "deployments.apps", "-n", "default")
    assert release.can(operator, "patch", "validatingwebhookconfigurations/modelyard-webhook")
    assert not release.can(operator, "patch", "validatingwebhookconfigurations/someone-elses")
    assert not release.can(operator, "create", "validatingwebhookconfigurations")
    assert not release.can(operator, "get", "secrets", "-n", NS)
    assert not release.can(operator, "create", "leases.coordination.k8s.io", "-n", "default")
    assert release.can(operator, "patch", "pods", "-n", NS)  # its own leader label
    assert not release.can(operator, "patch", "pods", "-n", "default")
    assert release.can(gateway, "watch", "endpointslices.discovery.k8s.io", "--all-namespaces")
    assert release.can(gateway, "get", "secrets/modelyard-gateway-keys", "-n", NS)
    # upstream key Secrets: none granted by default (gateway.upstreamKeySecrets lists each one)
    assert not release.can(gateway, "get", "secrets/openai-api-key", "-n", "default")
    assert not release.can(operator, "get", "configmaps", "-n", "default")
    assert not release.can(gateway, "get", "secrets/other", "-n", NS)
    assert not release.can(gateway, "list", "secrets", "-n", NS)
    assert not release.can(gateway, "patch", "modelendpoints.modelyard.io", "-n", "default")
    # the autoscaler finds the gateways through their metrics Service's slices, in its namespace only
    assert release.can(operator, "list", "endpointslices.discovery.k8s.io", "-n", NS)
    assert not release.can(operator, "list", "endpointslices.discovery.k8s.io", "-n", "default")


def test_webhook_denies_a_bad_endpoint_through_its_service(release: Release) -> None:
    config = wait_for(
        lambda: (c := release.get("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"
                                  "modelyard-webhook")) and c.get("webhooks") and c,
        120, "the operator to register its webhooks",
    )  # fmt: skip
    for hook in config["webhooks"]:
        client = hook["clientConfig"]
        assert "url" not in client
        assert client["service"]["name"] == "modelyard-webhook" and client["service"]["namespace"] == NS
        assert client["caBundle"] and hook["failurePolicy"] == "Fail"
    ca = release.get(f"/api/v1/namespaces/{NS}/secrets/modelyard-webhook-ca")  # the CA the replicas share
    bundle = base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"])
    assert base64.b64decode(ca["data"]["ca.crt"]) in bundle
    entry = ENTRY % {"name": "cannot-serve", "category": "embedding", "inference": "false"}
    release.cluster.kubectl("apply", "-f", "-", input=entry)
    denied = release.cluster.kubectl(
        "apply", "-f", "-", input=ENDPOINT % {"name": "bad", "model": "cannot-serve"}, check=False
    )
    assert denied.returncode != 0
    assert 'admission webhook "validate-endpoint.modelyard.io" denied the request' in denied.stderr
    assert "cannot serve inference (capabilities.inference is false)" in denied.stderr


def test_operator_reconciles_an_endpoint_and_the_gateway_sees_it(release: Release) -> None:
    release.cluster.kubectl(
        "apply", "-f", "-", input=ENTRY % {"name": "servable", "category": "text-llm", "inference": "true"}
    )
    release.cluster.kubectl("apply", "-f", "-", input=ENDPOINT % {"name": "good", "model": "servable"})
    path = "/apis/modelyard.io/v1alpha1/namespaces/default/modelendpoints/good"
    endpoint = wait_for(
        lambda: (e := release.get(path)) and (e.get("status") or {}).get("observedGeneration") and e,
        120, "the operator to write the endpoint's status",
    )  # fmt: skip
    assert endpoint["status"]["phase"]
    deployment = release.get("/apis/apps/v1/namespaces/default/deployments/good")
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("ModelEndpoint", "good")
    assert release.get("/api/v1/namespaces/default/services/good") is not None
    # The gateway answers on its pod IP (found through its Service's EndpointSlice).
    address, port = chartkit.ready_address(release.cluster.kube, NS, "modelyard-gateway")
    assert port == 8000
    with urllib.request.urlopen(f"http://{address}:{port}/readyz", timeout=10) as response:
        assert response.status == 200


def test_operator_scrapes_every_gateway_replica_for_demand(release: Release) -> None:
    """--gateway-metrics-service as the chart sets it: the operator lists the gateway metrics
    Service's EndpointSlices (its Role) and reads each replica's /metrics (port ``metrics``)."""
    address, port = chartkit.ready_address(release.cluster.kube, NS, "modelyard-operator-metrics")

    def scraped() -> float:
        with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=10) as response:
            return kit.metric(response.read().decode(), "modelyard_operator_gateways_scraped")

    wait_for(lambda: scraped() == 1, 60, "the operator to read the one gateway replica's metrics")


def test_neither_process_was_refused_anything(release: Release) -> None:
    """Everything above ran under the chart's RBAC: a missing rule would show up as a 403."""
    for name in ("modelyard-operator", "modelyard-gateway"):
        logs = release.cluster.kubectl("logs", "-n", NS, f"deployment/{name}", "--tail=-1").stdout
        assert logs, f"{name} logged nothing"
        refused = [line for line in logs.splitlines() if "forbidden" in line.lower() or " 403" in line]
        assert not refused, f"{name}: " + "\n".join(refused[:5])


def test_upgrade_changes_the_release_and_keeps_the_webhooks(release: Release) -> None:
    result = release.helm(
        "upgrade", chartkit.RELEASE, str(chartkit.CHART), "--namespace", NS, "--reuse-values",
        "--set", "gateway.replicas=2", "--set", "operator.replicas=2", "--set", "catalog.builtin=true",
        "--set", "operator.statusApi.auth.enabled=true", "--wait", "--timeout", "300s",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "REVISION: 2" in result.stdout
    assert release.deployment("modelyard-gateway")["status"].get("readyReplicas") == 2
    # The operator restarted with --apply-builtin-catalog: the built-in entries appear, owned
    # by their own field manager.
    from modelyard.registry import builtin, manifests

    names = {e.name for e in manifests.load_entries(builtin.CATALOG)}
    entries = wait_for(
        lambda: names <= {
            e["metadata"]["name"] for e in release.get("/apis/modelyard.io/v1alpha1/modelentries")["items"]
        },
        180, "the built-in catalog's ModelEntries",
    )  # fmt: skip
    assert entries
    one = release.get(f"/apis/modelyard.io/v1alpha1/modelentries/{sorted(names)[0]}")
    assert "modelyard-catalog" in {m["manager"] for m in one["metadata"]["managedFields"]}
    config = release.get(
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/modelyard-webhook"
    )
    assert len(config.get("webhooks") or []) == 3, json.dumps(config)[:500]


def test_with_two_operator_replicas_services_reach_only_the_leader(release: Release) -> None:
    def ready_endpoints(service: str) -> list[dict[str, Any]]:
        slices = release.get(
            f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
            f"?labelSelector=kubernetes.io/service-name%3D{service}"
        )["items"]
        endpoints = [e for s in slices for e in s.get("endpoints") or []]
        return [e for e in endpoints if (e.get("conditions") or {}).get("ready")]

    def operator_pods() -> list[dict[str, Any]]:
        selector = "app.kubernetes.io/component%3Doperator"
        pods = release.get(f"/api/v1/namespaces/{NS}/pods?labelSelector={selector}")
        return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]

    wait_for(lambda: len(operator_pods()) == 2, 120, "two operator pods (the old ReplicaSet gone)")
    for service in ("modelyard-webhook", "modelyard-status-api"):
        endpoints = wait_for(
            lambda service=service: len(found := ready_endpoints(service)) == 1 and found,
            120, f"{service} to reach one replica",
        )  # fmt: skip
        leader = release.get(f"/api/v1/namespaces/{NS}/pods/{endpoints[0]['targetRef']['name']}")
        assert leader["metadata"]["labels"].get("modelyard.io/leader") == "true"
    denied = release.cluster.kubectl(
        "apply", "-f", "-", input=ENDPOINT % {"name": "bad-again", "model": "cannot-serve"}, check=False
    )
    assert "denied the request" in denied.stderr


def _status_api(release: Release, path: str, token: str | None) -> int:
    address, port = chartkit.ready_address(release.cluster.kube, NS, "modelyard-status-api")
    request = urllib.request.Request(f"http://{address}:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_status_api_token_is_generated_once_and_kept_across_upgrades(release: Release) -> None:
    def token() -> str:
        secret = release.get(f"/api/v1/namespaces/{NS}/secrets/modelyard-status-api-token")
        return base64.b64decode(secret["data"]["token"]).decode()

    first = token()
    assert len(first) == 40
    assert _status_api(release, "/api/v1/endpoints", None) == 401
    assert _status_api(release, "/api/v1/endpoints", first) == 200
    again = release.helm(
        "upgrade", chartkit.RELEASE, str(chartkit.CHART), "--namespace", NS, "--reuse-values",
        "--wait", "--timeout", "300s",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert token() == first


def _gateway_models(release: Release, key: str | None) -> int:
    address, port = chartkit.ready_address(release.cluster.kube, NS, "modelyard-gateway")
    request = urllib.request.Request(f"http://{address}:{port}/v1/models")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_gateway_key_is_generated_required_and_kept_across_upgrades(release: Release) -> None:
    def key() -> str:
        secret = release.get(f"/api/v1/namespaces/{NS}/secrets/modelyard-gateway-keys")
        return base64.b64decode(secret["data"]["default"]).decode()

    first = key()
    assert first.startswith("sk-") and len(first) == 51
    assert _gateway_models(release, None) == 401
    assert _gateway_models(release, "sk-guessed") == 401
    assert _gateway_models(release, first) == 200
    again = release.helm(
        "upgrade", chartkit.RELEASE, str(chartkit.CHART), "--namespace", NS, "--reuse-values",
        "--wait", "--timeout", "300s",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "get secret modelyard-gateway-keys -o jsonpath='{.data.default}' | base64 -d" in again.stdout
    assert key() == first
    assert _gateway_models(release, first) == 200


def test_uninstall_keeps_crds_and_leaves_no_webhook_behind(release: Release) -> None:
    result = release.helm("uninstall", chartkit.RELEASE, "--namespace", NS, "--wait", "--timeout", "120s")
    assert result.returncode == 0, result.stderr
    for path in (
        f"/apis/apps/v1/namespaces/{NS}/deployments/modelyard-operator",
        f"/apis/apps/v1/namespaces/{NS}/deployments/modelyard-gateway",
        f"/api/v1/namespaces/{NS}/services/modelyard-webhook",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/modelyard-webhook",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/modelyard-operator",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/modelyard-gateway",
    ):
        wait_for(lambda path=path: release.get(path) is None, 120, f"{path} to go")
    for crd in ("modelentries", "modelendpoints", "trainingjobs"):
        assert release.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}.modelyard.io")
    assert release.get("/apis/modelyard.io/v1alpha1/modelentries/servable") is not None
    applied = release.cluster.kubectl(
        "apply", "-f", "-", input=ENDPOINT % {"name": "after", "model": "cannot-serve"}, check=False
    )
    assert applied.returncode == 0, applied.stderr  # no webhook is asked (none is left to deny it)
