"""ModelEndpoint reconciles against an in-memory cluster (fakecluster.py): what is applied,
that unchanged children are not applied again, and that objects of anyone else are neither
taken nor deleted. The control-plane tests keep pods, garbage collection and admission."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from fakecluster import FakeCluster, config_map, entry, make_context

from modelyard.controllers import cluster, context, model_endpoint

TEAM = "team"
QWEN3_CONFIG = {"name": "qwen3-config", "key": "config.json"}


def _endpoint(name: str = "chat", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": TEAM},
        "spec": {"model": "qwen3", "replicas": 1, **spec},
    }


def _reconcile(ctx: context.Context, name: str = "chat") -> dict[str, Any]:
    asyncio.run(model_endpoint.reconcile(ctx, (TEAM, name)))
    found = asyncio.run(ctx.cluster.get(cluster.MODEL_ENDPOINT, name, TEAM))
    return (found or {}).get("status") or {}


def _foreign(kind: cluster.Kind, name: str = "chat") -> dict[str, Any]:
    return {"apiVersion": kind[0], "kind": kind[1], "metadata": {"name": name, "namespace": TEAM}, "spec": {}}


@pytest.fixture()
def fake() -> FakeCluster:
    return FakeCluster(config_map("qwen3-config"), entry("qwen3", QWEN3_CONFIG), _endpoint())


def test_an_endpoint_applies_its_deployment_and_service_once(fake: FakeCluster) -> None:
    ctx = make_context(fake)
    status = _reconcile(ctx)
    written = [w for w in fake.writes if w[0] in ("apply", "create")]
    assert written == [  # created, no read first; no adapter ConfigMap unless the chart opts in
        ("create", "Service", "chat"),
        ("create", "Deployment", "chat"),
    ]
    deployment = asyncio.run(fake.get(cluster.DEPLOYMENT, "chat", TEAM))
    assert deployment is not None
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("ModelEndpoint", "chat")
    assert status == {}  # no pod yet: the passing Pending/Creating is not written at once
    assert ctx.entry_queue.scheduled == ["qwen3"]  # type: ignore[union-attr]
    assert context.CREATED_QUIET in ctx.endpoint_queue.delays  # type: ignore[union-attr]  # the recheck

    ctx.quiet_since[(TEAM, "chat")] -= context.CREATED_QUIET  # still no pod at the recheck: written
    status = _reconcile(ctx)
    assert (status["phase"], status["reason"]) == ("Pending", "Creating")
    assert status["servedName"] and status["engine"]
    assert not any(w[0] in ("apply", "create") for w in fake.writes[2:])

    fake.writes.clear()
    _reconcile(ctx)  # nothing changed: no apply, no status write
    assert fake.writes == []


def test_a_child_edited_by_hand_is_applied_again(fake: FakeCluster) -> None:
    ctx = make_context(fake)
    _reconcile(ctx)
    deployment = asyncio.run(fake.get(cluster.DEPLOYMENT, "chat", TEAM))
    assert deployment is not None
    deployment["spec"]["replicas"] = 5  # someone scaled it by hand: its generation moves
    fake.put(deployment)
    fake.writes.clear()
    _reconcile(ctx)
    assert ("apply", "Deployment", "chat") in fake.writes
    again = asyncio.run(fake.get(cluster.DEPLOYMENT, "chat", TEAM))
    assert again is not None and again["spec"]["replicas"] == 1


def test_a_same_named_deployment_of_someone_else_is_neither_taken_nor_deleted(fake: FakeCluster) -> None:
    theirs = fake.put(_foreign(cluster.DEPLOYMENT))
    status = _reconcile(make_context(fake))
    assert (status["phase"], status["reason"]) == ("Pending", "OwnershipConflict")
    assert "Deployment" in status["message"] and "chat" in status["message"]
    assert [w for w in fake.writes if w[0] in ("apply", "delete")] == []
    assert asyncio.run(fake.get(cluster.DEPLOYMENT, "chat", TEAM)) == theirs


def test_an_endpoint_waits_for_its_entry_then_deploys(fake: FakeCluster) -> None:
    asyncio.run(fake.delete(cluster.MODEL_ENTRY, "qwen3"))
    ctx = make_context(fake)
    status = _reconcile(ctx)
    assert (status["phase"], status["reason"]) == ("Pending", "EntryNotFound")
    assert not any(w[0] in ("apply", "create") for w in fake.writes)
    fake.put(entry("qwen3", QWEN3_CONFIG))
    _reconcile(ctx)
    assert ("create", "Deployment", "chat") in fake.writes


def test_a_disallowed_image_removes_only_the_endpoints_own_children(fake: FakeCluster) -> None:
    ctx = make_context(fake)
    _reconcile(ctx)  # its own Deployment and Service exist now
    theirs = fake.put(_foreign(cluster.SERVICE))  # ... and the Service is replaced by someone else's
    ctx.settings = dataclasses.replace(ctx.settings, allowed_image_prefixes=("registry.example.com/",))
    fake.put(_endpoint(image="evil.example.com/runtime:1"))
    status = _reconcile(ctx)
    assert (status["phase"], status["reason"]) == ("Failed", "ImageNotAllowed")
    assert asyncio.run(fake.get(cluster.DEPLOYMENT, "chat", TEAM)) is None
    assert asyncio.run(fake.get(cluster.SERVICE, "chat", TEAM)) == theirs


def test_a_deleted_endpoint_is_forgotten_and_its_entry_woken(fake: FakeCluster) -> None:
    ctx = make_context(fake)
    _reconcile(ctx)
    asyncio.run(fake.delete(cluster.MODEL_ENDPOINT, "chat", TEAM))
    _reconcile(ctx)
    assert (TEAM, "chat") not in ctx.endpoints and (TEAM, "chat") not in ctx.applied
    assert ctx.entry_queue.scheduled == ["qwen3", "qwen3"]  # type: ignore[union-attr]


def _pod(ready: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "chat-1", "namespace": TEAM, "labels": {"modelyard.io/endpoint": "chat"}},
        "spec": {},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def _rolled_out(fake: FakeCluster, ready: int) -> None:
    """The endpoint's Deployment rolled out with ``ready`` replicas Ready, and its pod so."""
    deployment = asyncio.run(fake.get(cluster.DEPLOYMENT, "chat", TEAM))
    assert deployment is not None
    deployment["status"] = {"readyReplicas": ready, "updatedReplicas": 1, "observedGeneration": 1}
    fake.put(deployment)
    fake.put(_pod(ready=bool(ready)))


class _Events:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def post(self, body: dict[str, Any], type: str, reason: str, message: str) -> None:
        self.messages.append(message)


def _events(ctx: context.Context) -> list[str]:
    """The messages of the events the operator posts from now on."""
    recorder = _Events()
    ctx.events = recorder  # type: ignore[assignment]
    return recorder.messages


def _start(ctx: context.Context, fake: FakeCluster) -> list[str]:
    """Reconcile a new endpoint through its start: children created (no pod), its pod starting,
    its pod Ready; the phases seen on the endpoint after each step."""
    phases = [_reconcile(ctx).get("phase", "")]  # children created, no pod yet
    fake.put(_pod(ready=False))
    phases.append(_reconcile(ctx).get("phase", ""))
    _rolled_out(fake, ready=1)
    phases.append(_reconcile(ctx).get("phase", ""))
    return phases


def test_a_new_endpoints_slow_start_writes_each_child_once_and_two_statuses(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start that outlasts context.CREATED_QUIET (0 here): a POST per child (no read before
    it), one status per phase (Pending, Progressing, Ready); one event, at its end, naming the
    state it ends (the passing states of a start are in the status only); the entry's list is
    written once, with the readiness."""
    monkeypatch.setattr(context, "CREATED_QUIET", 0.0)
    ctx = make_context(fake)
    events = _events(ctx)
    assert _start(ctx, fake) == ["Pending", "Progressing", "Ready"]
    assert [w for w in fake.writes if w[1] != "ModelEntry"] == [
        ("create", "Service", "chat"),
        ("create", "Deployment", "chat"),
        ("status", "ModelEndpoint", "chat"),
        ("status", "ModelEndpoint", "chat"),
        ("status", "ModelEndpoint", "chat"),
    ]
    assert [m.split(":")[0] for m in events] == ["Progressing -> Ready"]


def test_a_new_endpoints_fast_start_writes_one_status_and_one_event(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pods Ready within context.CREATED_QUIET of the first reconcile: the passing Pending and
    Progressing are not written; one status (Ready) and one event (New -> Ready); the entry's
    list is written once, with the readiness."""
    ctx = make_context(fake)
    events = _events(ctx)
    assert _start(ctx, fake) == ["", "", "Ready"]
    assert [w for w in fake.writes if w[1] != "ModelEntry"] == [
        ("create", "Service", "chat"),
        ("create", "Deployment", "chat"),
        ("status", "ModelEndpoint", "chat"),
    ]
    assert [m.split(":")[0] for m in events] == ["New -> Ready"]
    delays = ctx.entry_queue.delays  # type: ignore[union-attr]
    assert delays == [context.ENTRY_LIST_SETTLE, context.ENTRY_LIST_DELAY]  # listed; Ready brings it forward


def test_pods_slow_to_appear_write_pending_then_ready_without_the_passing_progressing(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pod within context.CREATED_QUIET: Pending/Creating is written; once the pods appear,
    their passing Progressing/Starting is held as long again, so pods Ready by then write
    Ready straight after Pending (two statuses, one event: Pending -> Ready)."""
    ctx = make_context(fake)
    events = _events(ctx)
    assert _reconcile(ctx) == {}  # children created, no pod yet: held
    ctx.quiet_since[(TEAM, "chat")] -= context.CREATED_QUIET  # still no pod at the recheck
    assert _reconcile(ctx)["phase"] == "Pending"
    fake.put(_pod(ready=False))
    assert _reconcile(ctx)["phase"] == "Pending"  # Progressing/Starting: held
    assert context.CREATED_QUIET in ctx.endpoint_queue.delays  # type: ignore[union-attr]  # its recheck
    _rolled_out(fake, ready=1)
    assert _reconcile(ctx)["phase"] == "Ready"
    assert [w[0] for w in fake.writes if w[1] == "ModelEndpoint"] == ["status", "status"]
    assert [m.split(":")[0] for m in events] == ["Pending -> Ready"]


def test_a_ready_endpoint_writes_its_progressing_at_once(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its start, every change is written at once (the gateway holds requests for a
    Progressing endpoint, not for a Ready one), and posted: leaving Ready is no passing state."""
    ctx = make_context(fake)
    events = _events(ctx)
    quiet = context.CREATED_QUIET
    monkeypatch.setattr(context, "CREATED_QUIET", 0.0)
    assert _start(ctx, fake)[-1] == "Ready"
    monkeypatch.setattr(context, "CREATED_QUIET", quiet)
    _rolled_out(fake, ready=0)  # its pod replaced by hand: starting again
    assert _reconcile(ctx)["phase"] == "Progressing"
    assert [m.split(":")[0] for m in events] == ["Progressing -> Ready", "Ready -> Progressing"]
