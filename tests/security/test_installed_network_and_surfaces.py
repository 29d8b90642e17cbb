"""Network and surfaces of the chart as installed with default values:

- NetworkPolicies ship on by default: the chart's own for the operator and gateway pods (port by
  port), and the operator's per ModelEndpoint and TrainingJob, whose only peers are the
  release's gateway and operator pods (the local control plane enforces none, so the objects,
  their selectors and the live pods they select are what is checked);
- the status API needs a token by default (generated, kept in a Secret); /metrics of both the
  operator and the gateway is on a port apart from their APIs;
- trainer pods mount no service-account token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from privkit import NODES, NS, Installed, http_get, matches

from kit import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TENANT = "team-net"
ENTRIES = """
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {name: net-servable}
spec:
  source: {provider: local, uri: "file:///nonexistent/model"}
  category: text-llm
  architecture: LlamaForCausalLM
  capabilities: {inference: true, training: true}
"""
WORKLOADS = """
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {name: chat, namespace: %(ns)s}
spec: {model: net-servable, replicas: 0, resources: {gpus: 0}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: data, namespace: %(ns)s}
data: {train.jsonl: '{"text": "hello"}'}
---
apiVersion: modelyard.io/v1alpha1
kind: TrainingJob
metadata: {name: tune, namespace: %(ns)s}
spec:
  model: net-servable
  dataset: {configMap: {name: data, key: train.jsonl}}
  resources: {gpus: 0}
  backoffLimit: 0
  output: {uri: "file:///nonexistent/out"}
"""


@pytest.fixture(scope="module")
def installed(own_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    state = tmp_path_factory.mktemp("security-network")
    with own_cluster(state / "cluster", NODES) as cluster:
        release = Installed(cluster, state / "helm")
        release.install()
        cluster.kubectl("create", "namespace", TENANT)
        release.apply(ENTRIES)
        release.apply(WORKLOADS % {"ns": TENANT})
        yield release


def _policy(installed: Installed, namespace: str, name: str) -> dict[str, Any]:
    path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}"
    found: dict[str, Any] = wait_for(lambda: installed.get(path), 120, f"NetworkPolicy {namespace}/{name}")
    return found


def _peers_are_only_the_release(installed: Installed, policy: dict[str, Any], port: str) -> None:
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": NS}}
    selector = peer["podSelector"]["matchLabels"]
    namespace = installed.get(f"/api/v1/namespaces/{NS}")
    assert matches(peer["namespaceSelector"]["matchLabels"], namespace["metadata"]["labels"])
    for component in ("gateway", "operator"):
        pods = installed.pods(component)
        assert pods and all(matches(selector, p["metadata"]["labels"]) for p in pods), component
    tenant_pods = installed.get(f"/api/v1/namespaces/{TENANT}/pods")["items"]
    assert not [p for p in tenant_pods if matches(selector, p["metadata"]["labels"])]


def test_the_chart_ships_policies_for_its_own_pods(installed: Installed) -> None:
    for name, component, ports in (
        ("modelyard-operator", "operator", {"http", "metrics", "webhook"}),
        ("modelyard-gateway", "gateway", {"http", "metrics"}),
    ):
        policy = _policy(installed, NS, name)
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        selector = policy["spec"]["podSelector"]["matchLabels"]
        pods = installed.pods(component)
        assert pods and all(matches(selector, p["metadata"]["labels"]) for p in pods)
        assert {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]} == ports
        named = {p["name"] for c in pods[0]["spec"]["containers"] for p in c.get("ports") or []}
        assert ports <= named, (ports, named)


def test_endpoint_pods_admit_only_the_gateway_and_the_operator(installed: Installed) -> None:
    policy = _policy(installed, TENANT, "chat")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"modelyard.io/endpoint": "chat"}}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    owner = policy["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelEndpoint", "chat", True)
    # the policy is applied first, so no pod of the endpoint is ever reachable without it
    deployment = wait_for(
        lambda: installed.get(f"/apis/apps/v1/namespaces/{TENANT}/deployments/chat"), 120, "the Deployment"
    )
    template = deployment["spec"]["template"]
    assert matches(policy["spec"]["podSelector"]["matchLabels"], template["metadata"]["labels"])
    assert "http" in {p["name"] for p in template["spec"]["containers"][0]["ports"]}
    _peers_are_only_the_release(installed, policy, "http")


def test_trainer_pods_admit_only_the_release_and_mount_no_token(installed: Installed) -> None:
    policy = _policy(installed, TENANT, "tune")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"modelyard.io/training-job": "tune"}}
    owner = policy["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("TrainingJob", "tune")
    _peers_are_only_the_release(installed, policy, "progress")
    job = wait_for(
        lambda: installed.get(f"/apis/batch/v1/namespaces/{TENANT}/jobs/tune"), 120, "the trainer's Job"
    )
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    config = json.loads(job["spec"]["template"]["metadata"]["annotations"]["modelyard.io/trainer-config"])
    assert config["trainingJob"] == {"namespace": TENANT, "name": "tune"}
    assert installed.get(f"/api/v1/namespaces/{TENANT}/configmaps/tune-config") is None
    pods = wait_for(
        lambda: installed.get(
            f"/api/v1/namespaces/{TENANT}/pods?labelSelector=modelyard.io/training-job%3Dtune"
        )["items"],
        120,
        "the trainer pod",
    )
    spec = pods[0]["spec"]
    assert spec["automountServiceAccountToken"] is False
    projected = [
        s for v in spec.get("volumes") or [] for s in (v.get("projected") or {}).get("sources") or []
    ]
    assert not [s for s in projected if "serviceAccountToken" in s]
    mounts = [m["mountPath"] for c in spec["containers"] for m in c.get("volumeMounts") or []]
    assert "/var/run/secrets/kubernetes.io/serviceaccount" not in mounts


def test_status_api_needs_the_generated_token_and_metrics_live_apart(installed: Installed) -> None:
    secret = installed.get(f"/api/v1/namespaces/{NS}/secrets/modelyard-status-api-token")
    assert secret is not None, "the chart generates the status API token by default"
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 40
    status_api = installed.address("modelyard-status-api")
    assert http_get(f"{status_api}/api/v1/endpoints")[0] == 401
    assert http_get(f"{status_api}/api/v1/endpoints", "wrong")[0] == 401
    assert http_get(f"{status_api}/api/v1/endpoints", token)[0] == 200
    assert http_get(f"{status_api}/metrics")[0] == 404
    operator_metrics = installed.address("modelyard-operator-metrics", "metrics")
    code, text = http_get(f"{operator_metrics}/metrics")
    assert code == 200 and "modelyard_reconciles_total" in text
    gateway_api = installed.address("modelyard-gateway", "http")
    assert http_get(f"{gateway_api}/metrics")[0] == 404
    code, text = http_get(f"{installed.address('modelyard-gateway-metrics', 'metrics')}/metrics")
    assert code == 200 and "modelyard_gateway_requests_total" in text
