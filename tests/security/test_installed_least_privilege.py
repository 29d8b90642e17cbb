"""Least privilege of the chart as installed (`helm install` with default values, one upstream
key Secret granted), checked with ``kubectl auth can-i --as=system:serviceaccount:...`` and by
what the processes do under those rights:

- the operator cannot read or patch ConfigMaps it did not create (``aws-auth`` in kube-system,
  anything in a tenant namespace); it reads entry ConfigMaps in its own namespace only;
- the gateway reads upstream key Secrets only where the platform granted them
  (``gateway.upstreamKeySecrets``: namespace and name), not a common name in every namespace;
- a Secret it may not read never keeps a new gateway pod unready: the endpoint that needs it
  is reported (log line and ``modelyard_gateway_upstream_key_unreadable``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from privkit import NODES, NS, Installed, chartkit, http_get

from kit import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

GRANTED = {"namespace": "team-a", "name": "openai-api-key"}

UPSTREAM = """
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {name: %(entry)s}
spec:
  source: {provider: upstream}
  servedName: %(entry)s
  runtime: {engine: upstream}
  upstream:
    baseUrl: "http://127.0.0.1:9/v1"
    apiKeySecretRef: {name: openai-api-key, key: apiKey}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {name: %(entry)s, namespace: %(namespace)s}
spec: {model: %(entry)s, resources: {gpus: 0}}
"""


@pytest.fixture(scope="module")
def installed(own_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    state = tmp_path_factory.mktemp("security-install")
    with own_cluster(state / "cluster", NODES) as cluster:
        release = Installed(cluster, state / "helm")
        for namespace in ("team-a", "team-b"):
            cluster.kubectl("create", "namespace", namespace)
            cluster.kubectl(
                "create", "secret", "generic", "openai-api-key", "-n", namespace, "--from-literal=apiKey=sk-x"
            )
        release.install("--set-json", f"gateway.upstreamKeySecrets={json.dumps([GRANTED])}")
        yield release


def test_default_render_has_no_cluster_wide_configmap_or_secret_rule() -> None:
    docs = chartkit.documents(chartkit.template())
    cluster_rules = [r for d in docs if d["kind"] == "ClusterRole" for r in d["rules"]]
    assert cluster_rules
    for rule in cluster_rules:
        assert not {"configmaps", "secrets", "*"} & set(rule["resources"]), rule


def test_operator_cannot_read_or_patch_configmaps_it_did_not_create(installed: Installed) -> None:
    operator = "modelyard-operator"
    for verb in ("get", "patch", "update", "delete"):
        assert not installed.can(operator, verb, "configmaps/aws-auth", "-n", "kube-system"), verb
    for verb in ("get", "list", "create", "patch"):
        assert not installed.can(operator, verb, "configmaps", "-n", "team-a"), verb
    assert not installed.can(operator, "list", "configmaps", "--all-namespaces")
    # entry config.json ConfigMaps: read in its own namespace, never written
    assert installed.can(operator, "get", "configmaps", "-n", NS)
    assert not installed.can(operator, "patch", "configmaps", "-n", NS)
    assert not installed.can(operator, "create", "configmaps", "-n", NS)


def test_an_entry_cannot_make_the_operator_read_another_namespaces_configmap(installed: Installed) -> None:
    installed.apply("""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {name: peek}
spec:
  source: {repo: a/b}
  config: {configMapRef: {name: aws-auth, namespace: kube-system, key: mapRoles}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {name: own-namespace}
spec:
  source: {repo: a/b}
  config: {configMapRef: {name: missing, key: config.json}}
""")  # fmt: skip

    def reason(name: str) -> str:
        found = installed.get(f"/apis/modelyard.io/v1alpha1/modelentries/{name}") or {}
        return str((found.get("status") or {}).get("reason") or "")

    peek = wait_for(lambda: reason("peek"), 120, "the operator to judge entry peek")
    assert "only in its own namespace 'modelyard-system'" in peek, peek
    assert "configMapRef.namespace" in peek
    # In its own namespace the read is allowed (a 404, not a 403 that would fail the reconcile).
    own = wait_for(lambda: reason("own-namespace"), 120, "the operator to judge entry own-namespace")
    assert own == f"ConfigMap {NS}/missing (spec.config.configMapRef) does not exist"


def test_gateway_reads_upstream_key_secrets_only_where_granted(installed: Installed) -> None:
    gateway = "modelyard-gateway"
    assert installed.can(gateway, "get", "secrets/openai-api-key", "-n", "team-a")
    assert installed.can(gateway, "watch", "secrets/openai-api-key", "-n", "team-a")
    for namespace in ("team-b", "default", "kube-system"):
        assert not installed.can(gateway, "get", "secrets/openai-api-key", "-n", namespace), namespace
    assert not installed.can(gateway, "get", "secrets/other", "-n", "team-a")
    assert not installed.can(gateway, "list", "secrets", "-n", "team-a")
    assert not installed.can(gateway, "list", "secrets", "--all-namespaces")


def test_an_unreadable_upstream_secret_never_keeps_a_new_gateway_unready(installed: Installed) -> None:
    installed.apply(UPSTREAM % {"entry": "up-a", "namespace": "team-a"})
    installed.apply(UPSTREAM % {"entry": "up-b", "namespace": "team-b"})  # team-b's Secret: not granted
    old = {p["metadata"]["name"] for p in installed.pods("gateway")}
    assert old
    installed.cluster.kubectl("delete", "pod", "-n", NS, *sorted(old), "--wait=false")

    def new_ready() -> list[dict[str, Any]]:
        pods = [p for p in installed.pods("gateway") if p["metadata"]["name"] not in old]
        return [
            p for p in pods
            for c in (p.get("status") or {}).get("conditions") or []
            if c["type"] == "Ready" and c["status"] == "True"
        ]  # fmt: skip

    (pod,) = wait_for(new_ready, 180, "a new gateway pod to become Ready")
    # the new pod itself (the Service's EndpointSlice may still name the old one for a moment)
    port = next(p["containerPort"] for p in pod["spec"]["containers"][0]["ports"] if p["name"] == "metrics")
    metrics = f"http://{pod['status']['podIP']}:{port}"

    def unreadable() -> list[str]:
        status, text = http_get(f"{metrics}/metrics")
        assert status in (0, 200), text[:300]
        return [
            line
            for line in text.splitlines()
            if line.startswith("modelyard_gateway_upstream_key_unreadable{")
        ]

    lines = wait_for(unreadable, 60, "the gateway to report the unreadable Secret")
    assert lines == [
        'modelyard_gateway_upstream_key_unreadable{endpoint="team-b/up-b",secret="team-b/openai-api-key"} 1.0'
    ]
    logs = installed.cluster.kubectl("logs", "-n", NS, pod["metadata"]["name"], "--tail=-1").stdout
    assert (
        "upstream endpoint team-b/up-b is not routed: the gateway may not read its key Secret "
        "team-b/openai-api-key" in logs
    ), logs[-2000:]
    assert "team-a/up-a is not routed" not in logs
