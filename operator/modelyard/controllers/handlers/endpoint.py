"""ModelEndpoint's handlers: a change to the endpoint reconciles it at once, an event of one of
its children (Deployment, Service, Pod, the live adapter ConfigMap: labelled with
``wire.ENDPOINT``) a little later, so a burst of pod events costs one reconcile.

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


def register(
    registry: kopf.OperatorRegistry,
    ctx: context.Context,
    opts: options.OperatorOptions,
    status_cache: cache.Cache | None,
) -> None:
    on = kopf.on

    @on.event(GROUP, wire.MODEL_ENDPOINTS, registry=registry)
    async def endpoint_seen(type: str | None, body: Any, **kwargs: Any) -> None:
        ctx.informer.attach(kwargs)
        plain = ownership.plain(body)
        deleted = type == "DELETED"
        ctx.touch_endpoints(ctx.ownership.endpoint_event(plain, deleted=deleted))
        if ctx.informer.changed(wire.MODEL_ENDPOINTS, plain, deleted):  # new, changed, gone: at once
            meta = plain.get("metadata") or {}
            ctx.touch_endpoint(str(meta.get("namespace") or ""), str(meta.get("name")), delay=0)

    @on.event("apps/v1", "deployments", labels=CHILDREN, registry=registry)
    @on.event("v1", "services", labels=CHILDREN, registry=registry)
    @on.event("v1", "pods", labels=CHILDREN, registry=registry)
    async def child_event(namespace: str | None, labels: Mapping[str, str], **kwargs: Any) -> None:
        ctx.informer.attach(kwargs)
        ctx.touch_endpoint(namespace or "", labels[wire.ENDPOINT], delay=0.3)

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
