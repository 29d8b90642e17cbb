"""What the operator's kopf handlers do with an event, per kind
(:mod:`modelyard.controllers.handlers`): kopf watches TrainingJobs only (entries and endpoints:
:mod:`modelyard.controllers.custom_watches`; children: tests/controllers/test_child_watches.py),
every event of the three kinds reaches the status API's cache, and each kind has one validating
handler, in the webhook's order, only with the
webhook on. In memory: the handlers are called as kopf would call them."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from fakecluster import FakeCluster, make_context

from modelyard.api import wire
from modelyard.builders import settings
from modelyard.controllers import custom_watches, handlers, options
from modelyard.controllers.handlers import common, kopf_settings
from modelyard.statusapi import cache

MANAGED = {wire.MANAGED_BY: wire.PRODUCT}


def _watchers(registry: kopf.OperatorRegistry, plural: str) -> list[Any]:
    return [
        h
        for h in registry._watching.get_all_handlers()
        if h.selector is not None and h.selector.any_name == plural
    ]


def test_kopf_watches_training_jobs_only() -> None:
    """Entries, endpoints and children are the operator's own watches
    (:mod:`modelyard.controllers.custom_watches`, tests/controllers/test_child_watches.py)."""
    ctx = make_context(FakeCluster())
    builder = settings.Settings(adapter_config_maps=True)
    registry = handlers.build_registry(ctx, options.OperatorOptions(webhook=False, builder=builder))
    watched = {h.selector.any_name for h in registry._watching.get_all_handlers() if h.selector is not None}
    watched |= {h.selector.any_name for h in registry._indexing.get_all_handlers() if h.selector is not None}
    watched |= {h.selector.any_name for h in registry._changing.get_all_handlers() if h.selector is not None}
    assert watched == {wire.TRAINING_JOBS}


def _body(kind: str, namespace: str | None) -> dict[str, Any]:
    meta = {"name": "x", "uid": "u1", **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{wire.GROUP}/v1alpha1", "kind": kind, "metadata": meta, "spec": {}}


def test_training_jobs_events_reach_the_status_cache() -> None:
    ctx = make_context(FakeCluster())
    status_cache = cache.Cache()
    registry = handlers.build_registry(ctx, options.OperatorOptions(webhook=False), status_cache)
    mirrors = [h for h in _watchers(registry, wire.TRAINING_JOBS) if h.id.endswith("mirror")]
    assert len(mirrors) == 1
    body = _body("TrainingJob", "team")
    asyncio.run(mirrors[0].fn(type="ADDED", body=body))
    assert status_cache.get("TrainingJob", "team", "x") is not None
    asyncio.run(mirrors[0].fn(type="DELETED", body=body))
    assert status_cache.get("TrainingJob", "team", "x") is None


@pytest.mark.parametrize(("kind", "namespace"), [("ModelEndpoint", "team"), ("ModelEntry", None)])
def test_entries_and_endpoints_events_reach_the_status_cache(kind: str, namespace: str | None) -> None:
    """Through the operator's own watches' handlers, each of which also reconciles what changed."""
    ctx = make_context(FakeCluster())
    status_cache = cache.Cache()
    found = {w.kind[1]: w for w in custom_watches.watched(ctx, status_cache)}
    without = {w.kind[1]: w for w in custom_watches.watched(ctx, None)}
    body = _body(kind, namespace)

    async def events() -> None:
        found[kind].on_event("ADDED", body)
        assert status_cache.get(kind, namespace, "x") is not None
        found[kind].on_event("DELETED", body)
        assert status_cache.get(kind, namespace, "x") is None
        without[kind].on_event("ADDED", body)  # no cache: nothing to mirror into
        assert status_cache.get(kind, namespace, "x") is None

    asyncio.run(events())


def test_without_a_cache_nothing_mirrors() -> None:
    registry = handlers.build_registry(make_context(FakeCluster()), options.OperatorOptions(webhook=False))
    assert not [h for h in registry._watching.get_all_handlers() if h.id.endswith("mirror")]


def test_one_validating_handler_per_kind_in_the_webhooks_order() -> None:
    ctx = make_context(FakeCluster())
    on = handlers.build_registry(ctx, options.OperatorOptions(webhook=True))
    found = [(h.id, h.selector.any_name) for h in on._webhooks.get_all_handlers() if h.selector is not None]
    assert found == [(h.id, h.plural) for h in common.ADMISSION]
    off = handlers.build_registry(ctx, options.OperatorOptions(webhook=False))
    assert not off._webhooks.get_all_handlers()


def test_a_metadata_only_update_is_never_denied() -> None:
    """kopf's finalizers and a deletion's changes touch metadata only: the check is not even run
    (an invalid spec already stored must not block them)."""
    ctx = make_context(FakeCluster())
    registry = handlers.build_registry(ctx, options.OperatorOptions(webhook=True))
    invalid = {"apiVersion": f"{wire.GROUP}/v1alpha1", "kind": "ModelEndpoint",
               "metadata": {"name": "x", "namespace": "team"}, "spec": {"replicas": -1}}  # fmt: skip
    (validate,) = [h for h in registry._webhooks.get_all_handlers() if h.id == common.ENDPOINT_WEBHOOK.id]
    asyncio.run(
        validate.fn(body=invalid, warnings=[], old={**invalid, "metadata": {"name": "x", "labels": {}}})
    )
    with pytest.raises(kopf.AdmissionError):
        asyncio.run(validate.fn(body=invalid, warnings=[], old=None))


def test_kopf_builds_a_diff_base_only_for_training_jobs() -> None:
    storage = kopf_settings.ChangingKindsOnly(prefix=wire.GROUP, key="last-handled-configuration")
    job = {"apiVersion": "modelyard.io/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "tune"},
           "spec": {"method": "lora"}, "status": {"phase": "Running"}}  # fmt: skip
    assert storage.build(body=kopf.Body(job))["spec"] == {"method": "lora"}
    endpoint = {**job, "kind": "ModelEndpoint"}
    assert storage.build(body=kopf.Body(endpoint)) == {}
