"""What the operator's kopf handlers do with an event, per kind (:mod:`modelyard.controllers.handlers`):
a child's event wakes its parent's reconcile, every event of the three kinds reaches the status
API's cache, and each kind has one validating handler, in the webhook's order, only with the
webhook on. In memory: the handlers are called as kopf would call them."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from fakecluster import FakeCluster, make_context

from modelyard.api import wire
from modelyard.builders import settings
from modelyard.controllers import context, handlers, options
from modelyard.controllers.handlers import common, kopf_settings
from modelyard.controllers.handlers import endpoint as endpoint_handlers
from modelyard.statusapi import cache

MANAGED = {wire.MANAGED_BY: wire.PRODUCT}


def _watchers(registry: kopf.OperatorRegistry, plural: str) -> list[Any]:
    return [
        h
        for h in registry._watching.get_all_handlers()
        if h.selector is not None and h.selector.any_name == plural
    ]


def _fire(registry: kopf.OperatorRegistry, plural: str, labels: dict[str, str], **kwargs: Any) -> None:
    """Deliver one watch event to every handler of ``plural`` whose label filter passes."""
    for handler in _watchers(registry, plural):
        wanted = handler.labels or {}
        if all(
            key in labels and (value is kopf.PRESENT or labels[key] == value) for key, value in wanted.items()
        ):
            asyncio.run(handler.fn(labels=labels, **kwargs))


def _scheduled(ctx: context.Context) -> dict[str, list[Any]]:
    queues = {"endpoint": ctx.endpoint_queue, "entry": ctx.entry_queue, "training": ctx.training_queue}
    return {name: list(queue.scheduled) for name, queue in queues.items()}  # type: ignore[union-attr]


@pytest.mark.parametrize("plural", ["deployments", "services", "pods", "configmaps"])
def test_an_endpoint_childs_event_wakes_that_endpoint_only(plural: str) -> None:
    ctx = make_context(FakeCluster())
    builder = settings.Settings(adapter_config_maps=True)  # adapter ConfigMaps are watched only then
    registry = handlers.build_registry(ctx, options.OperatorOptions(webhook=False, builder=builder))
    _fire(registry, plural, {**MANAGED, wire.ENDPOINT: "chat"}, namespace="team", type="MODIFIED", body={})
    assert _scheduled(ctx) == {"endpoint": [("team", "chat")], "entry": [], "training": []}


@pytest.mark.parametrize("plural", ["jobs", "pods"])
def test_a_training_childs_event_wakes_that_job_only(plural: str) -> None:
    ctx = make_context(FakeCluster())
    registry = handlers.build_registry(ctx, options.OperatorOptions(webhook=False))
    _fire(
        registry, plural, {**MANAGED, wire.TRAINING_JOB: "tune"}, namespace="team", type="MODIFIED", body={}
    )
    assert _scheduled(ctx) == {"endpoint": [], "entry": [], "training": [("team", "tune")]}


def test_without_adapter_config_maps_no_configmap_is_watched() -> None:
    """The operator has no ConfigMap rights outside its namespace unless the chart opts in."""
    registry = handlers.build_registry(make_context(FakeCluster()), options.OperatorOptions(webhook=False))
    assert not _watchers(registry, "configmaps")


def test_objects_someone_else_manages_wake_nothing() -> None:
    ctx = make_context(FakeCluster())
    registry = handlers.build_registry(ctx, options.OperatorOptions(webhook=False))
    for plural in ("deployments", "services", "pods", "jobs"):
        _fire(registry, plural, {wire.ENDPOINT: "chat", wire.TRAINING_JOB: "tune"}, namespace="team", body={})
    assert _scheduled(ctx) == {"endpoint": [], "entry": [], "training": []}


@pytest.mark.parametrize(
    ("plural", "kind", "namespace"),
    [(wire.MODEL_ENDPOINTS, "ModelEndpoint", "team"), (wire.TRAINING_JOBS, "TrainingJob", "team"),
     (wire.MODEL_ENTRIES, "ModelEntry", None)],
)  # fmt: skip
def test_every_kinds_events_reach_the_status_cache(plural: str, kind: str, namespace: str | None) -> None:
    ctx = make_context(FakeCluster())
    status_cache = cache.Cache()
    registry = handlers.build_registry(ctx, options.OperatorOptions(webhook=False), status_cache)
    mirrors = [h for h in _watchers(registry, plural) if h.id.endswith("mirror")]
    assert len(mirrors) == 1
    meta = {"name": "x", **({"namespace": namespace} if namespace else {})}
    body = {"apiVersion": f"{wire.GROUP}/v1alpha1", "kind": kind, "metadata": meta, "spec": {}}
    asyncio.run(mirrors[0].fn(type="ADDED", body=body))
    assert status_cache.get(kind, namespace, "x") is not None
    asyncio.run(mirrors[0].fn(type="DELETED", body=body))
    assert status_cache.get(kind, namespace, "x") is None


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


def test_a_deployment_with_every_replica_ready_wakes_its_endpoint_at_once() -> None:
    """Readiness is not coalesced behind a second's wait like the other child events."""
    ctx = make_context(FakeCluster())
    registry = handlers.build_registry(ctx, options.OperatorOptions(webhook=False))
    labels = {**MANAGED, wire.ENDPOINT: "chat"}

    def deployment(ready: int, observed: int = 1) -> dict[str, Any]:
        return {"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 2},
                "status": {"readyReplicas": ready, "observedGeneration": observed}}  # fmt: skip

    for body in (deployment(1), deployment(2, observed=0), deployment(2)):
        _fire(registry, "deployments", labels, namespace="team", type="MODIFIED", body=body)
    _fire(registry, "pods", labels, namespace="team", type="MODIFIED", body={"kind": "Pod"})
    queue = ctx.endpoint_queue
    assert queue.delays == [endpoint_handlers.CHILD_DELAY, endpoint_handlers.CHILD_DELAY, 0.0,  # type: ignore[union-attr]
                            endpoint_handlers.CHILD_DELAY]  # fmt: skip


def test_kopf_builds_a_diff_base_only_for_training_jobs() -> None:
    storage = kopf_settings.ChangingKindsOnly(prefix=wire.GROUP, key="last-handled-configuration")
    job = {"apiVersion": "modelyard.io/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "tune"},
           "spec": {"method": "lora"}, "status": {"phase": "Running"}}  # fmt: skip
    assert storage.build(body=kopf.Body(job))["spec"] == {"method": "lora"}
    endpoint = {**job, "kind": "ModelEndpoint"}
    assert storage.build(body=kopf.Body(endpoint)) == {}
