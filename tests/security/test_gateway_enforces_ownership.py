"""The gateway enforces served-name ownership itself, from its own watches, whatever the
endpoints' status says: here no operator and no webhook run (both bypassed), and the test
writes ``status.phase: Ready`` on mallory's endpoints itself, as a forged or stale status would.

Mallory's hijack gets 0 of alice's requests, her endpoint cannot borrow alice's name as a
fallback, a conflicting endpoint adds nothing to the owner's fallback chain, and API keys
limited to namespaces (``<name>.namespaces`` in the keys Secret) reach only those namespaces'
served names.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import openai
import ownershipkit as kit
import pytest

import handkit
from modelyard.gateway import kube, kube_discovery

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

harness = kit.harness  # the fixture: a gateway and fake model servers on a loop of their own


def _serving_endpoint(cluster: Any, ns: str, name: str, served: str, url: str | None, **spec: Any) -> None:
    """A ModelEndpoint whose status says Ready, and (given ``url``) one ready pod at that URL."""
    hand = handkit.HandOperator(cluster.kube, ns)
    hand.create_endpoint(name, kit.endpoint(name, ns, f"sec-gw-{name}", servedName=served, **spec)["spec"])
    hand.endpoint_status(name, {"phase": "Ready", "servedName": served, "engine": "vllm"})
    if url is not None:
        slice_name = f"{name}-{uuid.uuid4().hex[:5]}"
        hand.endpoint_slice(name, slice_name, url, {"ready": True}, labels=handkit.MANAGED)


def _keys(cluster: Any, ns: str, data: dict[str, str]) -> None:
    handkit.HandOperator(cluster.kube, ns).secret("modelyard-gateway-keys", data)


def test_the_gateway_routes_nothing_to_a_conflicting_endpoint_whatever_its_status(
    tenants: Any, harness: Any, wait: Any
) -> None:
    cluster = tenants.alice.cluster
    a, b = tenants.a, tenants.b
    tag = uuid.uuid4().hex[:6]
    served, mine, small = f"chat-{tag}", f"mine-{tag}", f"small-{tag}"
    alice, mallory = harness.fake("alice"), harness.fake("mallory")
    _serving_endpoint(cluster, a, "chat", served, alice.url)
    time.sleep(1.1)  # creationTimestamp has a one-second resolution: mallory's comes later
    _serving_endpoint(cluster, b, "hijack", served, mallory.url, weight=1000, fallback=[mine])
    _serving_endpoint(cluster, b, "mine", mine, mallory.url)
    _serving_endpoint(cluster, b, "small", small, None, fallback=[served])
    _keys(cluster, a, {
        "alice": "sk-alice", "alice.namespaces": a,
        "mallory": "sk-mallory", "mallory.namespaces": b,
        "ops": "sk-ops",
    })  # fmt: skip

    api = kube.KubeApi.load(str(cluster.kubeconfig), a)
    source = kube_discovery.KubeDiscovery(api, "modelyard-gateway-keys")
    url, _ = harness.gateway(source, auth=True)
    wait(lambda: source.synced and mine in source.table().ready_names() and source.keys().keys, 60, "routes")

    # 40 requests for alice's name: none reaches mallory's pod
    answers = [kit.chat(url, served, "sk-ops") for _ in range(40)]
    metrics = kit.metrics_text(url)
    assert kit.requests_to(metrics, f"{b}/hijack") == 0
    assert kit.requests_to(metrics, f"{a}/chat") == 40
    assert set(answers) == {"hello from alice"}
    assert not mallory.requests

    # the owner's fallback chain takes nothing from the conflicting endpoint
    model = source.table().get(served)
    assert model is not None and model.fallback == ()
    # mallory's own endpoint cannot fall back onto alice's name
    small_model = source.table().get(small)
    assert small_model is not None and small_model.fallback == ()
    with pytest.raises(openai.APIStatusError) as failed:
        kit.chat(url, small, "sk-ops")
    assert failed.value.status_code == 503
    assert not [r for r in alice.requests if r["body"]["model"] == small]

    # keys limited to namespaces
    assert kit.chat(url, served, "sk-alice") == "hello from alice"
    assert kit.chat(url, mine, "sk-mallory") == "hello from mallory"
    with pytest.raises(openai.PermissionDeniedError):
        kit.chat(url, served, "sk-mallory")
    with pytest.raises(openai.PermissionDeniedError):
        kit.chat(url, mine, "sk-alice")
    listed = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-mallory").models.list()
    assert served not in {m.id for m in listed.data} and mine in {m.id for m in listed.data}

    # the owner shares its name: mallory's endpoint joins the split (and her key may call it)
    handkit.HandOperator(cluster.kube, a).patch_endpoint("chat", {"shareServedNameWith": [b]})
    wait(lambda: len((source.table().get(served) or model).endpoints) == 2, 30, "the shared split")
    assert kit.chat(url, served, "sk-mallory") in {"hello from alice", "hello from mallory"}
