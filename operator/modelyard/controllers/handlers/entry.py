"""ModelEntry's handlers: a change reconciles the entry at once; every event updates who owns
which served name (:mod:`modelyard.controllers.ownership`). Watching handlers only, as for
endpoints (:mod:`.endpoint`): kopf writes nothing onto an entry."""

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

    @on.event(GROUP, wire.MODEL_ENTRIES, registry=registry)
    async def entry_seen(type: str | None, body: Any, **kwargs: Any) -> None:
        common.attach(ctx, kwargs)
        plain = ownership.plain(body)
        deleted = type == "DELETED"
        ctx.touch_endpoints(ctx.ownership.entry_event(plain, deleted=deleted))
        if ctx.informer.changed(wire.MODEL_ENTRIES, plain, deleted):  # new, changed, gone: at once
            ctx.touch_entry(str((plain.get("metadata") or {}).get("name")), delay=0)

    common.mirror(registry, wire.MODEL_ENTRIES, status_cache)
    common.validation(registry, ctx, opts, common.ENTRY_WEBHOOK, admission.validate_entry)
