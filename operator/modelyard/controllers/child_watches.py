"""What an event of a child means: which parent's reconcile it wakes, and how soon. The children
are watched by the operator's own watches (:mod:`.watches`), each selected by label on the API
server's side, so objects modelyard does not manage never reach the operator:

==========================  ====================================  ==========================
watch                       labels                                wakes
==========================  ====================================  ==========================
Deployments, Services       managed-by modelyard, ``endpoint``    the endpoint, 1 s later
Pods                        managed-by modelyard, ``endpoint``    the endpoint, 1 s later
Pods, batch Jobs            managed-by modelyard, ``training-job``  the TrainingJob, 0.3 s later
adapter ConfigMaps          managed-by modelyard, ``endpoint``    the endpoint, 0.3 s later
==========================  ====================================  ==========================

An endpoint's Deployments, Services and Pods are kept for its reconcile to read
(:mod:`.informer`). A pod's start is a burst of events, so a child's event waits a second for
more (one reconcile, one status write), except a Deployment with every replica ready: its
endpoint turns Ready at once, never behind the creation backlog's coalescing. The echo of the
operator's own write (the event of a Deployment or Service at the very version its create or
apply returned) wakes nothing: the reconcile that wrote it has seen it. Adapter
ConfigMaps are watched only with the rights to (``Settings.adapter_config_maps``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from modelyard.api import wire
from modelyard.controllers import cluster, context, watches

CHILD_DELAY = 1.0
"""How long a child's event waits for more before its endpoint reconciles."""
TRAINING_DELAY = 0.3
ADAPTER_DELAY = 0.3

MANAGED = f"{wire.MANAGED_BY}={wire.PRODUCT}"
OF_ENDPOINT = f"{MANAGED},{wire.ENDPOINT}"
OF_TRAINING = f"{MANAGED},{wire.TRAINING_JOB}"


def all_ready(body: Mapping[str, Any]) -> bool:
    """A Deployment whose replicas are all ready (its endpoint turns Ready on it: at once)."""
    if body.get("kind") != "Deployment":
        return False
    status, meta = body.get("status") or {}, body.get("metadata") or {}
    wanted = int((body.get("spec") or {}).get("replicas") or 0)
    return (
        wanted > 0
        and int(status.get("readyReplicas") or 0) >= wanted
        and int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    )


def _place(body: Mapping[str, Any], label: str) -> tuple[str, str] | None:
    meta = body.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(label)
    return (str(meta.get("namespace") or ""), str(owner)) if owner else None


def endpoint_child(ctx: context.Context) -> watches.Handler:
    def on_event(kind: str, body: dict[str, Any]) -> None:
        if kind == "DELETED":
            ctx.informer.forget(body)
        elif ctx.informer.echo(body):
            return  # the Deployment or Service as our own create or apply left it
        place = _place(body, wire.ENDPOINT)
        if place is not None:
            ctx.touch_endpoint(*place, delay=0.0 if all_ready(body) else CHILD_DELAY)

    return on_event


def training_child(ctx: context.Context) -> watches.Handler:
    def on_event(_kind: str, body: dict[str, Any]) -> None:
        place = _place(body, wire.TRAINING_JOB)
        if place is not None:
            ctx.touch_training(*place, delay=TRAINING_DELAY)

    return on_event


def adapter_set(ctx: context.Context) -> watches.Handler:
    """The live adapter ConfigMap (:mod:`.adapters`): deleted or edited, it is applied again."""

    def on_event(kind: str, body: dict[str, Any]) -> None:
        place = _place(body, wire.ENDPOINT)
        if place is None:
            return
        memory = ctx.adapters.get(place)
        if memory is not None and kind in ("DELETED", "MODIFIED"):
            memory.config_map = ""  # compare with the built one at the next reconcile
        ctx.touch_endpoint(*place, delay=ADAPTER_DELAY)

    return on_event


def watched(ctx: context.Context, adapter_config_maps: bool) -> list[watches.Watch]:
    """Every watch of children, as the table in the module docstring says."""
    endpoint, reads = endpoint_child(ctx), ctx.informer
    found = [
        watches.Watch(kind, OF_ENDPOINT, endpoint, watches.Store(kind), reads)
        for kind in (cluster.DEPLOYMENT, cluster.SERVICE, cluster.POD)
    ]
    found += [watches.Watch(kind, OF_TRAINING, training_child(ctx)) for kind in (cluster.POD, cluster.JOB)]
    if adapter_config_maps:
        found.append(watches.Watch(cluster.CONFIG_MAP, OF_ENDPOINT, adapter_set(ctx)))
    return found


def start(ctx: context.Context, adapter_config_maps: bool) -> list[asyncio.Task[None]]:
    """Run every watch of children until the tasks are cancelled."""
    return [asyncio.create_task(watch.run(ctx.cluster)) for watch in watched(ctx, adapter_config_maps)]
