"""Served-name ownership with the real operator, its webhook and a gateway on the local cluster.

Alice's namespace serves a name first; mallory (a tenant of another namespace, through real
RBAC) tries to take its traffic: the webhook denies it naming the owner and the rule, and when
the object gets in anyway (the webhook configuration deleted, as a restore from backup does)
the operator marks it ``ServedNameConflict`` and the gateway sends it nothing. The platform's
``servingNamespaces`` and the owner's ``shareServedNameWith`` let a namespace in.

The endpoints proxy to fake OpenAI servers (``engine: upstream``), so no model runs.
"""

from __future__ import annotations

import uuid
from typing import Any

import ownershipkit as kit
import pytest

from modelyard.gateway import kube, kube_discovery

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

harness = kit.harness  # the fixture: a gateway and fake model servers on a loop of their own


def _status(cluster: Any, ns: str, name: str) -> dict[str, Any]:
    found = cluster.kube.get(f"{kit.GROUP}/namespaces/{ns}/modelendpoints/{name}") or {}
    status: dict[str, Any] = found.get("status") or {}
    return status


def _exists(cluster: Any, ns: str, name: str) -> bool:
    return cluster.kube.get(f"{kit.GROUP}/namespaces/{ns}/modelendpoints/{name}") is not None


def _entry_phase(cluster: Any, name: str) -> str | None:
    found = cluster.kube.get(f"{kit.GROUP}/modelentries/{name}") or {}
    return (found.get("status") or {}).get("phase")


@pytest.fixture()
def tag(local_cluster: Any) -> Any:
    value = uuid.uuid4().hex[:6]
    yield value
    local_cluster.kubectl("delete", "modelentries", "-l", f"sec-own={value}", check=False)


def _entry(cluster: Any, tag: str, name: str, served: str, url: str, serving: list[str] | None = None) -> str:
    obj = kit.upstream_entry(f"{name}-{tag}", served, url + "/v1", serving)
    obj["metadata"]["labels"] = {"sec-own": tag}
    kit.admin_apply(cluster, obj)
    return str(obj["metadata"]["name"])


def test_mallory_cannot_take_alices_served_name_and_the_gateway_sends_her_nothing(
    operator: Any,
    tenants: Any,
    harness: Any,
    tag: str,
    wait: Any,
) -> None:
    cluster = tenants.alice.cluster
    a, b = tenants.a, tenants.b
    alice_fake, mallory_fake = harness.fake("alice"), harness.fake("mallory")
    served = f"chat-{tag}"
    alice_entry = _entry(cluster, tag, "alice", served, alice_fake.url)
    mallory_entry = _entry(cluster, tag, "mallory", f"mine-{tag}", mallory_fake.url)

    done = tenants.alice.apply(kit.endpoint("chat", a, alice_entry))
    assert done.returncode == 0, done.stderr
    wait(lambda: _status(cluster, a, "chat").get("phase") == "Ready", 120, "alice's endpoint Ready")

    # admission: denied, naming the owner and the rule
    hijack = kit.endpoint("hijack", b, mallory_entry, servedName=served, weight=1000)
    denied = tenants.mallory.apply(hijack)
    assert denied.returncode != 0, denied.stdout
    assert f"served name '{served}' belongs to namespace {a}" in denied.stderr, denied.stderr
    assert "rule: " in denied.stderr and "shareServedNameWith" in denied.stderr
    assert not _exists(cluster, b, "hijack")

    # past admission, as a restore from backup would put it
    with kit.webhook_bypassed(cluster):
        kit.admin_apply(cluster, hijack)
    assert _exists(cluster, b, "hijack")

    def conflict() -> bool:
        status = _status(cluster, b, "hijack")
        return status.get("reason") == "ServedNameConflict"

    wait(conflict, 120, "mallory's endpoint to report ServedNameConflict")
    # a change of its spec is judged again (denied); labels and annotations are not (the
    # operator's own bookkeeping and a deletion's finalizers must go through)
    moved = tenants.mallory.kubectl(
        "patch", "modelendpoint", "hijack", "--type=merge", "-p", '{"spec": {"weight": 999}}'
    )
    assert moved.returncode != 0 and f"belongs to namespace {a}" in moved.stderr, moved.stderr
    labelled = tenants.mallory.kubectl("label", "modelendpoint", "hijack", "team=mallory")
    assert labelled.returncode == 0, labelled.stderr
    status = _status(cluster, b, "hijack")
    assert status["phase"] == "Failed"
    assert f"namespace {a}" in status["message"] and f"{a}/chat came first" in status["message"]

    source = kube_discovery.KubeDiscovery(kube.KubeApi.load(str(cluster.kubeconfig), a), None)
    url, _ = harness.gateway(source)
    wait(lambda: source.synced and served in source.table().ready_names(), 60, "the gateway's routes")
    answers = [kit.chat(url, served) for _ in range(40)]
    metrics = kit.metrics_text(url)
    assert kit.requests_to(metrics, f"{b}/hijack") == 0
    assert kit.requests_to(metrics, f"{a}/chat") == 40
    assert set(answers) == {"hello from alice"} and not mallory_fake.requests

    # the owner leaves: the next oldest endpoint takes the name
    tenants.alice.kubectl("delete", "modelendpoint", "chat", check=True)
    wait(lambda: _status(cluster, b, "hijack").get("phase") == "Ready", 120, "mallory's to take over")
    wait(lambda: kit.chat(url, served) == "hello from mallory", 60, "the gateway to route to the new owner")


def test_servingnamespaces_and_sharing_let_a_namespace_in(
    operator: Any,
    tenants: Any,
    harness: Any,
    tag: str,
    wait: Any,
) -> None:
    cluster = tenants.alice.cluster
    a, b = tenants.a, tenants.b
    fake = harness.fake("model")
    platform = _entry(cluster, tag, "platform", f"platform-{tag}", fake.url, serving=[a])
    mallory_entry = _entry(cluster, tag, "mallory", f"mine-{tag}", fake.url)
    # the operator has seen the claim (admission judges other objects from its watches)
    wait(lambda: _entry_phase(cluster, platform), 60, "the platform entry's status")

    # the platform's entry: only namespace a may deploy it, nobody else may serve its name
    denied = tenants.mallory.apply(kit.endpoint("p", b, platform))
    assert denied.returncode != 0
    assert f"ModelEntry {platform} may be deployed only from namespaces {a}" in denied.stderr, denied.stderr
    assert "spec.servingNamespaces" in denied.stderr
    denied = tenants.mallory.apply(kit.endpoint("p", b, mallory_entry, servedName=f"platform-{tag}"))
    assert denied.returncode != 0
    assert f"belongs to the platform: ModelEntry {platform} lists namespaces {a}" in denied.stderr
    # the platform admin lets namespace b in
    widened = kit.upstream_entry(platform, f"platform-{tag}", fake.url + "/v1", [a, b])
    widened["metadata"]["labels"] = {"sec-own": tag}
    assert tenants.admin.apply(widened).returncode == 0
    allowed = tenants.mallory.apply(kit.endpoint("p", b, platform))
    assert allowed.returncode == 0, allowed.stderr
    wait(lambda: _status(cluster, b, "p").get("phase") == "Ready", 120, "mallory's endpoint of the entry")
    # ... and narrows the list again: warned at admission, the endpoint is shut out
    narrowed = kit.upstream_entry(platform, f"platform-{tag}", fake.url + "/v1", [a])
    narrowed["metadata"]["labels"] = {"sec-own": tag}
    done = tenants.admin.apply(narrowed)
    assert done.returncode == 0, done.stderr
    assert f"will be in ServedNameConflict and stop serving: {b}/p" in done.stderr, done.stderr
    wait(lambda: _status(cluster, b, "p").get("reason") == "ServedNameConflict", 120, "mallory's shut out")

    # a first-come name: the owner shares it
    shared = f"shared-{tag}"
    owner = kit.endpoint("s", a, mallory_entry, servedName=shared)
    assert tenants.alice.apply(owner).returncode == 0
    wait(lambda: _status(cluster, a, "s").get("phase") == "Ready", 120, "the owner's endpoint")
    guest = kit.endpoint("s", b, mallory_entry, servedName=shared)
    denied = tenants.mallory.apply(guest)
    assert denied.returncode != 0 and f"belongs to namespace {a}" in denied.stderr
    owner["spec"]["shareServedNameWith"] = [b]
    assert tenants.alice.apply(owner).returncode == 0
    allowed = tenants.mallory.apply(guest)
    assert allowed.returncode == 0, allowed.stderr
    wait(lambda: _status(cluster, b, "s").get("phase") == "Ready", 120, "the guest's endpoint")

    # the owner takes the share back: the guest is in conflict again, and says so
    owner["spec"]["shareServedNameWith"] = []
    assert tenants.alice.apply(owner).returncode == 0
    wait(lambda: _status(cluster, b, "s").get("reason") == "ServedNameConflict", 120, "the guest shut out")
    assert f"namespace {a}" in _status(cluster, b, "s")["message"]


def test_fallback_may_name_only_names_the_namespace_may_use(
    operator: Any,
    tenants: Any,
    harness: Any,
    tag: str,
    wait: Any,
) -> None:
    cluster = tenants.alice.cluster
    a, b = tenants.a, tenants.b
    fake = harness.fake("model")
    entry = _entry(cluster, tag, "plain", f"plain-{tag}", fake.url)
    assert tenants.alice.apply(kit.endpoint("big", a, entry, servedName=f"big-{tag}")).returncode == 0
    # the operator has seen it (admission judges other objects from its watches)
    wait(lambda: _status(cluster, a, "big").get("phase") == "Ready", 120, "alice's endpoint Ready")

    leech = kit.endpoint("small", b, entry, servedName=f"small-{tag}", fallback=[f"big-{tag}"])
    denied = tenants.mallory.apply(leech)
    assert denied.returncode != 0
    assert f"spec.fallback big-{tag} ignored" in denied.stderr, denied.stderr
    leech["spec"]["fallback"] = [f"nobody-serves-this-{tag}"]
    allowed = tenants.mallory.apply(leech)
    assert allowed.returncode == 0, allowed.stderr

    # past admission: the operator says the fallback is ignored
    leech["spec"]["fallback"] = [f"big-{tag}"]
    with kit.webhook_bypassed(cluster):
        kit.admin_apply(cluster, leech)

    def says_ignored() -> bool:
        return f"spec.fallback big-{tag} ignored" in (_status(cluster, b, "small").get("message") or "")

    wait(says_ignored, 120, "mallory's status to say her fallback is ignored")
    assert _status(cluster, b, "small")["phase"] == "Ready"
