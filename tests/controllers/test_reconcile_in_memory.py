"""ModelEntry reconciles against an in-memory cluster (fakecluster.py): the status they write,
what they wake and that a second pass writes nothing, in milliseconds. The control-plane tests
(test_entry_and_upstream.py) keep what only a real API server and operator show."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakecluster import FakeCluster, config_map, entry, make_context

from modelyard.controllers import cluster, context, model_entry

NS = "modelyard-system"
QWEN3_CONFIG = {"name": "qwen3-config", "key": "config.json"}


def _reconcile(ctx: context.Context, name: str) -> dict[str, Any]:
    asyncio.run(model_entry.reconcile(ctx, name))
    found = asyncio.run(ctx.cluster.get(cluster.MODEL_ENTRY, name))
    return (found or {}).get("status") or {}


@pytest.fixture()
def fake() -> FakeCluster:
    return FakeCluster(config_map("qwen3-config"), entry("qwen3", QWEN3_CONFIG))


def test_an_entry_resolves_from_its_configmap_and_lists_its_endpoints(fake: FakeCluster) -> None:
    ctx = make_context(fake)
    ctx.endpoints[("team", "chat")] = context.EndpointState(model="qwen3", ready=True, phase="Ready")
    status = _reconcile(ctx, "qwen3")
    assert (status["phase"], status["architecture"]) == ("Valid", "Qwen3ForCausalLM")
    assert status["family"] == "qwen"
    assert status["estimate"]["parameters"] == 4022468096
    assert status["endpoints"] == [{"namespace": "team", "name": "chat", "ready": True}]
    assert status["observedGeneration"] == 1
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [("Ready", "True")]
    assert ctx.endpoint_queue.scheduled == [("team", "chat")]  # type: ignore[union-attr]


def test_a_second_reconcile_writes_nothing_and_wakes_no_one(fake: FakeCluster) -> None:
    ctx = make_context(fake)
    ctx.endpoints[("team", "chat")] = context.EndpointState(model="qwen3", ready=False, phase="Pending")
    _reconcile(ctx, "qwen3")
    _reconcile(ctx, "qwen3")
    assert fake.writes == [("status", "ModelEntry", "qwen3")]
    assert ctx.endpoint_queue.scheduled == [("team", "chat")]  # type: ignore[union-attr]


def test_a_spec_change_wakes_the_endpoints_again_but_a_list_change_does_not(fake: FakeCluster) -> None:
    ctx = make_context(fake)
    ctx.endpoints[("team", "chat")] = context.EndpointState(model="qwen3", ready=False, phase="Pending")
    _reconcile(ctx, "qwen3")
    ctx.endpoints[("team", "chat")] = context.EndpointState(model="qwen3", ready=True, phase="Ready")
    status = _reconcile(ctx, "qwen3")  # the endpoint's own change: its list entry, no wake-up
    assert status["endpoints"] == [{"namespace": "team", "name": "chat", "ready": True}]
    assert ctx.endpoint_queue.scheduled == [("team", "chat")]  # type: ignore[union-attr]
    fake.put(entry("qwen3", QWEN3_CONFIG, description="now described"))
    assert _reconcile(ctx, "qwen3")["observedGeneration"] == 2
    assert ctx.endpoint_queue.scheduled == [("team", "chat"), ("team", "chat")]  # type: ignore[union-attr]


def test_a_configmap_in_another_namespace_is_never_read(fake: FakeCluster) -> None:
    fake.put(config_map("theirs", namespace="team-b"))
    fake.put(entry("sneaky", {"name": "theirs", "namespace": "team-b", "key": "config.json"}))
    status = _reconcile(make_context(fake), "sneaky")
    assert status["phase"] == "Invalid"
    assert "spec.config.configMapRef.namespace" in status["reason"] and repr(NS) in status["reason"]
    assert "architecture" not in status or status["architecture"] is None


def test_a_missing_configmap_or_key_names_what_is_missing(fake: FakeCluster) -> None:
    fake.put(entry("no-config", {"name": "nope", "key": "config.json"}))
    fake.put(entry("no-key", {"name": "qwen3-config", "key": "other.json"}))
    ctx = make_context(fake)
    assert _reconcile(ctx, "no-config")["reason"] == (
        f"ConfigMap {NS}/nope (spec.config.configMapRef) does not exist"
    )
    assert _reconcile(ctx, "no-key")["reason"] == (
        f"ConfigMap {NS}/qwen3-config has no key 'other.json' (spec.config.configMapRef.key)"
    )


def test_a_deleted_entry_wakes_its_endpoints_and_is_forgotten(fake: FakeCluster) -> None:
    ctx = make_context(fake)
    ctx.endpoints[("team", "chat")] = context.EndpointState(model="qwen3", ready=True, phase="Ready")
    _reconcile(ctx, "qwen3")
    asyncio.run(fake.delete(cluster.MODEL_ENTRY, "qwen3"))
    asyncio.run(model_entry.reconcile(ctx, "qwen3"))
    assert "qwen3" not in ctx.entry_versions
    assert ctx.endpoint_queue.scheduled == [("team", "chat"), ("team", "chat")]  # type: ignore[union-attr]
