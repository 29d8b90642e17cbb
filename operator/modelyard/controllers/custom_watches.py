"""The operator's own watches of the custom kinds its reconciles read, with the machinery of the
children's (:mod:`.watches`), cluster-wide and without a label selector:

=================  ==================================================================
watch              what an event does
=================  ==================================================================
ModelEntries       moves served-name ownership (the endpoints whose verdict moved
                   reconcile); a change of the entry itself reconciles it at once
ModelEndpoints     moves served-name ownership; a change of the endpoint itself
                   reconciles it at once; keeps the autoscaler's set
TrainingJobs       kept by the endpoint whose ``output.serveOn`` they name (its adapters)
=================  ==================================================================

Entries and endpoints reach the status API's cache too. "A change of the object itself" is
what :meth:`.informer.Informer.changed` says (not a status write, not a version bump).

kopf watched these until its per-event machinery (per-object worker, handler selection, kwargs,
progress state; then three handlers per kind, each with its own copy of the body) was the
largest part of the operator's CPU left at 1000 endpoints (docs/benchmarks.md, the tenth pass).
kopf still runs the TrainingJob handlers, the TrainingJobs' cache mirror and the admission
webhook (:mod:`.handlers`).

A first listing hands on every object before the informer reads the store, all within one step
of the event loop, so a reconcile it wakes already reads from the store; the endpoints are
listed after the entries and TrainingJobs they read. Served-name ownership
is filled by a listing at start (:func:`.app.run`); if that listing failed, it is filled from
the stores once both first listings are in.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from modelyard.api import wire
from modelyard.controllers import cluster, context, watches
from modelyard.statusapi import cache

EVERYTHING = ""
"""No label selector: every object of the kind is the operator's to read."""


def _mirror(status_cache: cache.Cache | None, kind: str, body: dict[str, Any]) -> None:
    if status_cache is None:
        return
    if kind == "DELETED":
        meta = body.get("metadata") or {}
        status_cache.delete(str(body.get("kind")), meta.get("namespace"), str(meta.get("name")))
    else:
        status_cache.upsert(body)


def entry_seen(ctx: context.Context, status_cache: cache.Cache | None) -> watches.Handler:
    def on_event(kind: str, body: dict[str, Any]) -> None:
        deleted = kind == "DELETED"
        ctx.touch_endpoints(ctx.ownership.entry_event(body, deleted=deleted))
        if ctx.informer.changed(wire.MODEL_ENTRIES, body, deleted):  # new, changed, gone: at once
            ctx.touch_entry(str((body.get("metadata") or {}).get("name")), delay=0)
        _mirror(status_cache, kind, body)

    return on_event


def endpoint_seen(ctx: context.Context, status_cache: cache.Cache | None) -> watches.Handler:
    def on_event(kind: str, body: dict[str, Any]) -> None:
        deleted = kind == "DELETED"
        ctx.informer.track_autoscaling(body, deleted)
        ctx.touch_endpoints(ctx.ownership.endpoint_event(body, deleted=deleted))
        if ctx.informer.changed(wire.MODEL_ENDPOINTS, body, deleted):  # new, changed, gone: at once
            meta = body.get("metadata") or {}
            ctx.touch_endpoint(str(meta.get("namespace") or ""), str(meta.get("name")), delay=0)
        _mirror(status_cache, kind, body)

    return on_event


def _kept(_kind: str, _body: dict[str, Any]) -> None:
    """A TrainingJob's event: the store has it; kopf's handlers reconcile the job."""


def watched(ctx: context.Context, status_cache: cache.Cache | None) -> list[watches.Watch]:
    """Every watch of the custom kinds, as the table in the module docstring says."""
    reads = ctx.informer
    return [
        watches.Watch(kind, EVERYTHING, on_event, watches.Store(kind), reads)
        for kind, on_event in (
            (cluster.MODEL_ENTRY, entry_seen(ctx, status_cache)),
            (cluster.MODEL_ENDPOINT, endpoint_seen(ctx, status_cache)),
            (cluster.TRAINING_JOB, _kept),
        )
    ]


def fill_ownership(ctx: context.Context) -> None:
    """Fill served-name ownership from the stores, unless the listing at start did."""
    if ctx.ownership.complete:
        return
    endpoints, entries = ctx.informer.every(cluster.MODEL_ENDPOINT), ctx.informer.every(cluster.MODEL_ENTRY)
    if endpoints is not None and entries is not None:
        ctx.touch_endpoints(ctx.ownership.seed(endpoints, entries))


async def _ownership_when_listed(
    ctx: context.Context, entries: watches.Watch, endpoints: watches.Watch
) -> None:
    await entries.listed.wait()
    await endpoints.listed.wait()
    fill_ownership(ctx)


FIRST_LISTINGS = 30.0
"""How long the endpoints' watch waits for the entries' and TrainingJobs' first listings (an
endpoint's reconcile reads its entry; one that is not listed yet is a GET)."""


async def start(ctx: context.Context, status_cache: cache.Cache | None) -> list[asyncio.Task[None]]:
    """Run every watch of the custom kinds until the tasks are cancelled: the endpoints' once
    the entries and TrainingJobs are listed (as kopf filled every index before any handler ran),
    or after :data:`FIRST_LISTINGS` seconds."""
    entries, endpoints, jobs = watched(ctx, status_cache)
    tasks = [asyncio.create_task(watch.run(ctx.cluster)) for watch in (entries, jobs)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(entries.listed.wait(), jobs.listed.wait()), FIRST_LISTINGS)
    tasks.append(asyncio.create_task(endpoints.run(ctx.cluster)))
    return [*tasks, asyncio.create_task(_ownership_when_listed(ctx, entries, endpoints))]
