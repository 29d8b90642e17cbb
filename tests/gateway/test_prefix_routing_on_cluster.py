"""On the real control plane: ``spec.routing`` is checked by the API server with the field named,
and the gateway's discovery routes each endpoint's pods by the strategy it says, live."""

from __future__ import annotations

import json
from typing import Any

import pytest

import handkit
from kit import wait_for
from modelyard.gateway import kube, kube_discovery, routes

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


@pytest.mark.parametrize(
    ("routing", "field", "words"),
    [
        ({"strategy": "Random"}, "spec.routing.strategy", 'supported values: "LeastBusy", "PrefixHash"'),
        ({"loadFactor": 1.0}, "spec.routing.loadFactor", "should be greater than 1"),
        ({"prefixCharLength": 0}, "spec.routing.prefixCharLength", "should be greater than or equal to 1"),
        ({"sessionHeader": "X Session"}, "spec.routing.sessionHeader", "should match"),
    ],
)
def test_the_api_server_refuses_bad_routing_naming_the_field(
    local_cluster: Any, crds: None, namespace: str, routing: dict[str, Any], field: str, words: str
) -> None:
    manifest = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "bad-routing", "namespace": namespace},
        "spec": {"model": "tiny", "routing": routing},
    }
    done = local_cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False
    )
    assert done.returncode != 0
    assert field in done.stderr and words in done.stderr, done.stderr


def test_discovery_routes_by_each_endpoints_strategy_live(
    local_cluster: Any, crds: None, namespace: str, harness: Any
) -> None:
    cluster = handkit.HandOperator(local_cluster.kube, namespace)
    fakes = [harness.fake(f"p{i}", f"127.0.0.{10 + i}") for i in range(2)]
    routing = {"strategy": "PrefixHash", "prefixCharLength": 64, "sessionHeader": "X-Session-Id"}
    cluster.create_endpoint("chat", {"model": "tiny", "servedName": "chat", "routing": routing})
    cluster.endpoint_status("chat", {"phase": "Ready", "servedName": "chat", "engine": "vllm"})
    cluster.service("chat")
    for index, fake in enumerate(fakes):
        labels = handkit.MANAGED
        cluster.endpoint_slice("chat", f"chat-{index}", fake.url, {"ready": True}, labels=labels)

    api = kube.KubeApi.load(str(local_cluster.kubeconfig), namespace)
    source = kube_discovery.KubeDiscovery(api, None)
    harness.gateway(source)

    def endpoint() -> routes.Endpoint | None:
        model = source.table().get("chat")
        found = model.endpoint(f"{namespace}/chat") if model is not None else None
        return found if found is not None and len(found.targets) == 2 else None

    found = wait_for(endpoint, 60, "the endpoint and its two pods")
    assert found.routing == routes.Routing("PrefixHash", 64, 1.25, "X-Session-Id", False)
    cluster.patch_endpoint("chat", {"routing": {"strategy": "LeastBusy"}})
    wait_for(lambda: (e := endpoint()) is not None and not e.routing.prefix_hash, 60, "the strategy change")
