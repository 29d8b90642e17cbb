"""ModelEntry's handlers: a change reconciles the entry at once; every event updates who owns
which served name (:mod:`modelyard.controllers.ownership`)."""

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

    @on.resume(GROUP, wire.MODEL_ENTRIES, registry=registry)
    @on.create(GROUP, wire.MODEL_ENTRIES, registry=registry)
    @on.update(GROUP, wire.MODEL_ENTRIES, registry=registry)
    async def entry_changed(name: str, **_: Any) -> None:
        ctx.touch_entry(name, delay=0)

    @on.delete(GROUP, wire.MODEL_ENTRIES, registry=registry, optional=True)
    async def entry_deleted(name: str, **_: Any) -> None:
        ctx.touch_entry(name, delay=0)

    @on.event(GROUP, wire.MODEL_ENTRIES, registry=registry)
    async def entry_seen(type: str | None, body: Any, **_: Any) -> None:
        ctx.touch_endpoints(ctx.ownership.entry_event(ownership.plain(body), deleted=type == "DELETED"))

    common.mirror(registry, wire.MODEL_ENTRIES, status_cache)
    common.validation(registry, ctx, opts, common.ENTRY_WEBHOOK, admission.validate_entry)
