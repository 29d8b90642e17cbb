"""ModelEndpoint's handlers: a change to the endpoint reconciles it at once, an event of one of
its children (Deployment, Service, Pod, the live adapter ConfigMap: labelled with
``wire.ENDPOINT``) a second later, so a burst of pod events costs one reconcile, except a
Deployment that has all its replicas ready: its endpoint turns Ready at once.

Watching handlers only: kopf's create/update/resume handlers would have kopf patch a
last-handled-configuration annotation onto every endpoint (two requests each); which events
are changes of the endpoint itself the informer tells (:meth:`.informer.Informer.changed`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from modelyard.api import wire
from modelyard.controllers import admission, context, options, ownership
from modelyard.controllers.handlers import common
from modelyard.statusapi import cache

GROUP = common.GROUP
CHILDREN: Mapping[str, Any] = {**common.MANAGED, wire.ENDPOINT: kopf.PRESENT}
"""The labels of an endpoint's children."""
CHILD_DELAY = 1.0
"""How long a child's event waits for more before its endpoint reconciles (a pod's start is a
burst of events: one reconcile, one status write), except the one that makes it Ready."""


def _all_ready(body: Mapping[str, Any]) -> bool:
    """A Deployment whose replicas are all ready (its endpoint turns Ready on it: at once, never
    behind the creation backlog's coalescing)."""
    if body.get("kind") != "Deployment":
        return False
    status, meta = body.get("status") or {}, body.get("metadata") or {}
    wanted = int((body.get("spec") or {}).get("replicas") or 0)
    return (
        wanted > 0
        and int(status.get("readyReplicas") or 0) >= wanted
        and int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    )


def register(
    registry: kopf.OperatorRegistry,
    ctx: context.Context,
    opts: options.OperatorOptions,
    status_cache: cache.Cache | None,
) -> None:
    on = kopf.on

    @on.event(GROUP, wire.MODEL_ENDPOINTS, registry=registry)
    async def endpoint_seen(type: str | None, body: Any, **kwargs: Any) -> None:
        common.attach(ctx, kwargs)
        plain = ownership.plain(body)
        deleted = type == "DELETED"
        ctx.touch_endpoints(ctx.ownership.endpoint_event(plain, deleted=deleted))
        if ctx.informer.changed(wire.MODEL_ENDPOINTS, plain, deleted):  # new, changed, gone: at once
            meta = plain.get("metadata") or {}
            ctx.touch_endpoint(str(meta.get("namespace") or ""), str(meta.get("name")), delay=0)

    @on.event("apps/v1", "deployments", labels=CHILDREN, registry=registry)
    @on.event("v1", "services", labels=CHILDREN, registry=registry)
    @on.event("v1", "pods", labels=CHILDREN, registry=registry)
    async def child_event(
        type: str | None, namespace: str | None, labels: Mapping[str, str], body: Any, **kwargs: Any
    ) -> None:
        ctx.informer.attach(kwargs)
        if type == "DELETED":
            ctx.informer.forget(body)
        delay = 0.0 if _all_ready(body) else CHILD_DELAY
        ctx.touch_endpoint(namespace or "", labels[wire.ENDPOINT], delay=delay)

    if opts.builder.adapter_config_maps:  # watched only with the rights to (see Settings)

        @on.event("v1", "configmaps", labels=CHILDREN, registry=registry)
        async def adapter_set_event(
            type: str | None, namespace: str | None, labels: Mapping[str, str], **_: Any
        ) -> None:
            """The live adapter ConfigMap (:mod:`..adapters`): deleted or edited, it is applied again."""
            key = (namespace or "", labels[wire.ENDPOINT])
            memory = ctx.adapters.get(key)
            if memory is not None and type in ("DELETED", "MODIFIED"):
                memory.config_map = ""  # compare with the built one at the next reconcile
            ctx.touch_endpoint(*key, delay=0.3)

    common.mirror(registry, wire.MODEL_ENDPOINTS, status_cache)
    common.validation(registry, ctx, opts, common.ENDPOINT_WEBHOOK, admission.validate_endpoint)
