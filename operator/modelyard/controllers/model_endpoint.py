"""ModelEndpoint: apply its Deployment, Service and NetworkPolicy, and say honestly how its pods are doing.

One reconcile reads the endpoint, its entry, its Deployment and pods (from the watches'
indices, :mod:`.informer`), applies the desired children (server-side apply: a deleted or
hand-edited child is restored) and writes status once. Upstream endpoints run no pods: they are
Ready when the upstream base URL answers. (Over 300 lines: the apply and observe paths share
their reads and the ownership rule below; split, each would carry both.)

Children are only ever the endpoint's own (:mod:`modelyard.builders.children`): before an
apply, the live Deployment and Service (as the index has them) and, with NetworkPolicies on, the
NetworkPolicy (one GET) must be absent or controlled by this endpoint's uid; a child the index
lacks is created first, and read only when its name is taken (:mod:`.child_writes`: an object
of anyone else's is never watched). A same-named object of anyone else's is left
untouched and the endpoint waits, ``Pending``/``OwnershipConflict``, rechecked every
``CONFLICT_RECHECK_SECONDS``. An upstream endpoint, or one in ``ServedNameConflict``, deletes
only its own Deployment and Service, with the child's uid as a precondition.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from typing import Any

import aiohttp
import msgspec
import pydantic

from modelyard import api
from modelyard.api import wire
from modelyard.builders import children, deployment, endpoint_status, labels, network_policy, service, trust
from modelyard.controllers import (
    adapters,
    child_writes,
    cluster,
    conditions,
    context,
    inference_pool,
    model_entry,
)
from modelyard.registry import manifests

log = logging.getLogger(__name__)

_PHASE_EVENT_TYPE = {
    "Ready": "Normal",
    "Progressing": "Normal",
    "Pending": "Normal",
    "Degraded": "Warning",
    "Failed": "Warning",
}
CONFLICT_RECHECK_SECONDS = 30.0
"""How often an endpoint whose child's name is taken looks again (the foreign object sends no
event the operator watches)."""


def parse(body: dict[str, Any]) -> api.ModelEndpoint:
    return api.ModelEndpoint.model_validate({k: v for k, v in body.items() if k != "status"})


async def _upstream_answers(base_url: str) -> str | None:
    """None when the base URL answers HTTP at all (any status), else why not."""
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{base_url.rstrip('/')}/models"),
        ):
            return None
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{base_url} does not answer: {exc.__class__.__name__}: {exc}"


def _ids(obj: dict[str, Any] | None, field: str) -> tuple[str, Any]:
    meta = (obj or {}).get("metadata") or {}
    return str(meta.get("uid")), meta.get(field)


async def _observe_children(
    ctx: context.Context,
    endpoint: api.ModelEndpoint,
    entry: api.ModelEntry,
    uid: str,
    prepared: adapters.Prepared,
) -> tuple[endpoint_status.Observed, list[dict[str, Any]]]:
    """Apply the Deployment and Service unless they are as last applied, then observe the pods.

    Pod and Deployment status events wake most reconciles; re-applying unchanged children on
    each of them was most of the operator's load on the API server. A child is re-applied when
    what is built changed, or when it is gone, re-created or edited (the Deployment's generation
    or the Service's resourceVersion moved).
    """
    key = (endpoint.namespace or "", endpoint.name)
    built = deployment.build_deployment(endpoint, entry, ctx.settings, owner_uid=uid)
    built_service = service.build_service(endpoint, ctx.settings, owner_uid=uid, model=entry.name)
    policy = network_policy.build_endpoint_policy(endpoint, ctx.settings, owner_uid=uid, model=entry.name)
    # in memory only (ctx.applied), so any stable encoding does; msgspec's is the cheap one
    digest = hashlib.sha256(msgspec.json.encode([built, built_service, policy], order="sorted")).hexdigest()
    last = ctx.applied.get(key)
    current: dict[str, Any] | None = None
    live: tuple[dict[str, Any] | None, dict[str, Any] | None] | None = None
    if last is not None and last.digest == digest:
        live = await child_writes.known(ctx, endpoint.name, endpoint.namespace)
        current = live[0]
        seen = (_ids(live[0], "generation"), _ids(live[1], "resourceVersion"))
        if seen != (last.deployment, last.service):
            last = None
    if last is None or last.digest != digest:
        async with ctx.creating:  # a few at a time: each finishes soon, none starves observing
            taken, current = await _apply_children(
                ctx, endpoint, (built, built_service, policy), digest, uid, live, prepared
            )
        if taken is not None:  # a child's name is someone else's
            return taken, []
    else:
        await adapters.apply_set(ctx, endpoint, prepared, uid)  # the set changed, the pods did not
    pods = await _pods(ctx, endpoint)
    return endpoint_status.observe(endpoint.spec.replicas, current, pods), pods


async def _pods(ctx: context.Context, endpoint: api.ModelEndpoint) -> list[dict[str, Any]]:
    """The endpoint's pods as the watch has them (a listing before the informer is attached)."""
    pods = ctx.informer.pods(endpoint.namespace or "", endpoint.name)
    if pods is None:
        pods = await ctx.cluster.list(cluster.POD, endpoint.namespace, f"{wire.ENDPOINT}={endpoint.name}")
    return pods


async def _apply_children(
    ctx: context.Context,
    endpoint: api.ModelEndpoint,
    objects: tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None],
    digest: str,
    uid: str,
    live: tuple[dict[str, Any] | None, dict[str, Any] | None] | None,
    prepared: adapters.Prepared,
) -> tuple[endpoint_status.Observed | None, dict[str, Any] | None]:
    """Apply the children after the ownership check (fresh reads where the watch knows of none):
    the Pending status when a child's name is someone else's, else the Deployment as applied."""
    key = (endpoint.namespace or "", endpoint.name)
    built, built_service, policy = objects
    live = live or await child_writes.known(ctx, endpoint.name, endpoint.namespace)
    live_policy = (
        await ctx.cluster.get(cluster.NETWORK_POLICY, endpoint.name, endpoint.namespace)
        if policy is not None
        else None
    )
    taken = [children.conflict(child, "ModelEndpoint", endpoint.name, uid) for child in (*live, live_policy)]
    if any(taken):
        return _taken(ctx, endpoint, taken), None
    await adapters.apply_set(ctx, endpoint, prepared, uid)  # the adapters file, before the pods
    if policy is not None:  # before the pods exist, so none is ever reachable from elsewhere
        await ctx.cluster.apply(policy)
    # The Service first: a foreign one stops the Deployment (and its pods) from being created.
    applied_service, conflict = await child_writes.put(ctx, built_service, live[1], endpoint.name, uid)
    if conflict is not None:  # name a taken Deployment too (one GET, on this path only)
        found = live[0] or await ctx.cluster.get(cluster.DEPLOYMENT, endpoint.name, endpoint.namespace)
        return _taken(
            ctx, endpoint, [children.conflict(found, "ModelEndpoint", endpoint.name, uid), conflict]
        ), None
    current, conflict = await child_writes.put(ctx, built, live[0], endpoint.name, uid)
    if conflict is not None or current is None or applied_service is None:
        return _taken(ctx, endpoint, [conflict]), None
    ctx.informer.wrote(current)  # the Deployment as it is now, status included
    ctx.informer.wrote(applied_service)
    ctx.applied[key] = context.Applied(
        digest, _ids(current, "generation"), _ids(applied_service, "resourceVersion")
    )
    return None, current


def _taken(
    ctx: context.Context, endpoint: api.ModelEndpoint, messages: list[str | None]
) -> endpoint_status.Observed:
    """``Pending``/``OwnershipConflict`` naming the children of anyone else's; looked at again later."""
    ctx.applied.pop((endpoint.namespace or "", endpoint.name), None)
    ctx.touch_endpoint(endpoint.namespace or "", endpoint.name, delay=CONFLICT_RECHECK_SECONDS)
    message = "; ".join(m for m in messages if m)
    return endpoint_status.Observed("Pending", children.CONFLICT, message, endpoint.spec.replicas, 0)


async def _remove_children(ctx: context.Context, endpoint: api.ModelEndpoint, uid: str) -> None:
    """Delete the endpoint's own Deployment and Service (left from before it went upstream);
    same-named objects of anyone else's stay. Its own are labelled, so the watch knows them."""
    ctx.applied.pop((endpoint.namespace or "", endpoint.name), None)
    for kind, child in zip(
        (cluster.DEPLOYMENT, cluster.SERVICE),
        await child_writes.known(ctx, endpoint.name, endpoint.namespace),
        strict=True,
    ):
        if child is not None and children.owned(child, uid):
            await ctx.cluster.delete(kind, endpoint.name, endpoint.namespace, uid=child["metadata"]["uid"])


async def _decide(
    ctx: context.Context, endpoint: api.ModelEndpoint, uid: str, had_adapters: bool = False
) -> tuple[endpoint_status.Observed, dict[str, Any]]:
    """The observed state and the extra status fields (servedName, engine, url)."""
    problem = trust.image_problem(endpoint.spec.image, ctx.settings)
    if problem is not None:  # past admission (webhook down or bypassed): never run it
        await _remove_children(ctx, endpoint, uid)
        return endpoint_status.Observed("Failed", "ImageNotAllowed", problem, endpoint.spec.replicas, 0), {}
    entry_body = await ctx.informer.read(ctx.cluster, cluster.MODEL_ENTRY, endpoint.spec.model)
    if entry_body is not None:
        ctx.touch_endpoints(ctx.ownership.entry_event(entry_body))
    verdict = ctx.ownership.verdict(endpoint.namespace or "", endpoint.name)
    if verdict.conflict is not None:
        await _remove_children(ctx, endpoint, uid)
        return endpoint_status.Observed(
            "Failed", "ServedNameConflict", verdict.conflict, endpoint.spec.replicas, 0
        ), {}
    observed, extra = await _serve(ctx, endpoint, entry_body, uid, had_adapters)
    ignored = verdict.fallback_message()
    if ignored is not None:
        observed = dataclasses.replace(observed, message=f"{observed.message}; {ignored}")
    return observed, extra


async def _serve(
    ctx: context.Context,
    endpoint: api.ModelEndpoint,
    entry_body: dict[str, Any] | None,
    uid: str,
    had_adapters: bool = False,
) -> tuple[endpoint_status.Observed, dict[str, Any]]:
    """The endpoint may serve its name: deploy it (or wait for its entry)."""
    if entry_body is None:
        model = endpoint.spec.model
        message = f"ModelEntry {model!r} does not exist (yet); this endpoint proceeds once it is applied"
        return endpoint_status.Observed("Pending", "EntryNotFound", message, endpoint.spec.replicas, 0), {}
    entry = model_entry.parse(entry_body)
    problem = trust.engine_args_problem(endpoint.spec.engine_args, entry)
    if problem is not None:
        await _remove_children(ctx, endpoint, uid)
        return endpoint_status.Observed(
            "Failed", "EngineArgsNotAllowed", problem, endpoint.spec.replicas, 0
        ), {}
    if entry.spec.adapter is not None:  # a fine-tune: serve the base model's source + the adapter
        base_name = entry.spec.adapter.base_model
        base_body = await ctx.informer.read(ctx.cluster, cluster.MODEL_ENTRY, base_name)
        if base_body is None:
            message = f"ModelEntry {entry.name} adapts {base_name!r}, which does not exist (yet)"
            ctx.touch_endpoint(endpoint.namespace or "", endpoint.name, delay=10)
            return endpoint_status.Observed(
                "Pending", "BaseModelNotFound", message, endpoint.spec.replicas, 0
            ), {}
        base_source = model_entry.parse(base_body).spec.source
        entry = entry.model_copy(update={"spec": entry.spec.model_copy(update={"source": base_source})})
    result = await model_entry.resolved(ctx, entry)
    extra = {
        "servedName": deployment.served_name(entry, endpoint),
        "engine": deployment.resolved_engine(entry, endpoint),
    }
    if not result.ok:
        message = f"ModelEntry {entry.name} is invalid: {result.reason}"
        return endpoint_status.Observed("Failed", "EntryInvalid", message, endpoint.spec.replicas, 0), extra
    if not result.capabilities.inference:
        message = f"ModelEntry {entry.name} cannot serve inference (capabilities.inference is false)"
        return endpoint_status.Observed("Failed", "NotServable", message, endpoint.spec.replicas, 0), extra
    if extra["engine"] == "upstream":
        await _remove_children(ctx, endpoint, uid)
        upstream = entry.spec.upstream
        base_url = upstream.base_url if upstream else ""
        extra["url"] = base_url
        not_granted = trust.upstream_key_problem(entry, endpoint.namespace or "", ctx.settings)
        if not_granted is not None:
            return endpoint_status.Observed("Pending", "UpstreamKeyNotGranted", not_granted, 0, 0), extra
        problem = await _upstream_answers(base_url)
        if problem:
            ctx.touch_endpoint(endpoint.namespace or "", endpoint.name, delay=10)
            return endpoint_status.Observed("Pending", "UpstreamUnreachable", problem, 0, 0), extra
        return endpoint_status.Observed("Ready", "UpstreamAnswers", f"{base_url} answers", 0, 0), extra
    extra["url"] = service.service_url(endpoint, ctx.settings)
    prepared = await adapters.prepare(ctx, endpoint, entry)
    observed, pods = await _observe_children(ctx, endpoint, entry, uid, prepared)
    if observed.reason != children.CONFLICT:
        extra |= await adapters.sync(ctx, endpoint, prepared, extra["engine"], pods, had_adapters)
    return observed, extra


async def reconcile(ctx: context.Context, key: tuple[str, str]) -> None:
    namespace, name = key
    started = time.monotonic()
    body = await ctx.informer.read(ctx.cluster, cluster.MODEL_ENDPOINT, name, namespace)
    if body is None or body["metadata"].get("deletionTimestamp"):
        ctx.applied.pop(key, None)
        ctx.quiet_since.pop(key, None)
        adapters.forget(ctx, key)
        ctx.touch_endpoints(
            ctx.ownership.endpoint_event({"metadata": {"namespace": namespace, "name": name}}, True)
        )
        gone = ctx.endpoints.pop(key, None)
        if gone is not None:
            ctx.touch_entry(gone.model, delay=context.ENTRY_LIST_DELAY)
            await inference_pool.follow(ctx, namespace, gone.pods_serve)
        return
    generation = int(body["metadata"].get("generation", 0))
    current = body.get("status") or {}
    ctx.touch_endpoints(ctx.ownership.endpoint_event(body) - {key})
    try:
        endpoint = parse(body)
    except pydantic.ValidationError as exc:
        observed = endpoint_status.Observed(
            "Failed", "InvalidSpec", "; ".join(manifests.field_errors(exc)), 0, 0
        )
        extra: dict[str, Any] = {}
    else:
        observed, extra = await _decide(ctx, endpoint, body["metadata"]["uid"], bool(current.get("adapters")))
    status = {
        **endpoint_status.status(observed, generation, conditions.now(), current.get("conditions") or []),
        **extra,
        "selector": labels.selector_text(name),
    }
    model = str(body["spec"].get("model", ""))
    before = ctx.endpoints.get(key)
    serves = extra.get("servedName") if key in ctx.applied else None  # its pods serve this name
    uid = str(body["metadata"]["uid"])
    ctx.endpoints[key] = context.EndpointState(model, observed.phase == "Ready", observed.phase, serves, uid)
    await inference_pool.follow(ctx, namespace, before.pods_serve if before else None, serves)
    ready = observed.phase == "Ready"
    if before is None or before.ready != ready or before.model != model:
        readiness = ready if before is None else before.ready != ready
        ctx.touch_entry(model, delay=context.ENTRY_LIST_DELAY if readiness else context.ENTRY_LIST_SETTLE)
        if before is not None and before.model != model:
            ctx.touch_entry(before.model, delay=context.ENTRY_LIST_SETTLE)
    if _passing(ctx, key, current, observed):
        pass  # nothing written for a state the next reconcile supersedes
    elif conditions.status_changed(current, status):
        ctx.informer.wrote(await ctx.cluster.patch_status(cluster.MODEL_ENDPOINT, name, namespace, status))
    if key not in ctx.quiet_since and (current.get("phase"), current.get("reason")) != (
        observed.phase,
        observed.reason,
    ):
        _on_transition(ctx, body, current, observed)  # Pending, then Unschedulable: both
    ctx.metrics.reconciles.labels("ModelEndpoint", observed.phase).inc()
    ctx.metrics.duration.labels("ModelEndpoint").observe(time.monotonic() - started)
    ctx.metrics.managed.labels("ModelEndpoint").set(len(ctx.endpoints))


def _passing(
    ctx: context.Context, key: tuple[str, str], current: dict[str, Any], observed: endpoint_status.Observed
) -> bool:
    """Whether ``observed`` is a passing state of an endpoint's start (``Pending``/``Creating``:
    children created, no pod yet; ``Progressing``/``Starting``: pods not Ready yet), left
    unwritten for up to ``context.CREATED_QUIET`` seconds: while the endpoint has no status yet
    (counted from its first reconcile) or is written ``Pending``/``Creating`` (counted from when
    its pods appeared). An endpoint Ready by then writes one status and one event (``New ->
    Ready``, or ``Pending -> Ready`` on a cluster slow to create pods); a recheck writes a state
    that lasts longer. An endpoint written in any other phase writes every change at once."""
    written = (current.get("phase"), current.get("reason"))
    starting = not current.get("phase") or written == ("Pending", "Creating")
    state = (observed.phase, observed.reason)
    if not starting or state == written or state not in _START:
        ctx.quiet_since.pop(key, None)
        return False
    now = time.monotonic()
    left = context.CREATED_QUIET - (now - ctx.quiet_since.setdefault(key, now))
    if left <= 0:
        ctx.quiet_since.pop(key, None)
        return False
    ctx.touch_endpoint(*key, delay=left)
    return True


_START = {("Pending", "Creating"), ("Progressing", "Starting")}


def _on_transition(
    ctx: context.Context, body: dict[str, Any], current: dict[str, Any], observed: endpoint_status.Observed
) -> None:
    """An event for the new phase, except a passing state of a start (:data:`_START`, from no
    status or ``Pending``/``Creating``): the status shows it, and the event that ends it names it
    (``Progressing -> Ready``); a fleet's start posted one per endpoint for nothing a person acts
    on. Leaving Ready, or a failure, is always posted."""
    before = current.get("phase")
    kind = _PHASE_EVENT_TYPE.get(observed.phase, "Normal")
    message = f"{before or 'New'} -> {observed.phase}: {observed.message}"[:1024]
    starting = not before or (before, current.get("reason")) == ("Pending", "Creating")
    passing = starting and (observed.phase, observed.reason) in _START
    if ctx.events is not None and not passing:
        ctx.events.post(body, kind, observed.reason, message)
    if observed.phase == "Ready" and not _was_ready(body):
        created = conditions.parse_time(body["metadata"].get("creationTimestamp"))
        if created is not None:
            elapsed = (conditions.parse_time(conditions.now()) or created) - created
            ctx.metrics.time_to_ready.observe(max(0.0, elapsed.total_seconds()))


def _was_ready(body: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Available" and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions") or []
    )


async def wait_idle(ctx: context.Context) -> None:
    """Let scheduled reconciles finish (used at shutdown and in tests)."""
    if ctx.endpoint_queue is not None:
        await asyncio.wait_for(ctx.endpoint_queue.drain(), timeout=30)
    if ctx.events is not None:
        await asyncio.wait_for(ctx.events.drain(), timeout=30)
