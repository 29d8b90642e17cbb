"""ModelEndpoint's handlers: a change to the endpoint reconciles it at once (its children's
events come from the operator's own watches, :mod:`modelyard.controllers.child_watches`).

Watching handlers only: kopf's create/update/resume handlers would have kopf patch a
last-handled-configuration annotation onto every endpoint (two requests each); which events
are changes of the endpoint itself the informer tells (:meth:`.informer.Informer.changed`)."""

from __future__ import annotations

from typing import Any

import kopf

from modelyard.api import wire
from modelyard.controllers import admission, context, options, ownership
from modelyard.controllers.handlers import common
from modelyard.statusapi import cache

GROUP = common.GROUP


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
        ctx.informer.track_autoscaling(plain, deleted)
        ctx.touch_endpoints(ctx.ownership.endpoint_event(plain, deleted=deleted))
        if ctx.informer.changed(wire.MODEL_ENDPOINTS, plain, deleted):  # new, changed, gone: at once
            meta = plain.get("metadata") or {}
            ctx.touch_endpoint(str(meta.get("namespace") or ""), str(meta.get("name")), delay=0)

    common.mirror(registry, wire.MODEL_ENDPOINTS, status_cache)
    common.validation(registry, ctx, opts, common.ENDPOINT_WEBHOOK, admission.validate_endpoint)
