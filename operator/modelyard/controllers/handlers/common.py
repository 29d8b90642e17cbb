"""What every kind registers alike: the mirror into the status API's cache and the validating
webhook handler. Each function registers one handler for one kind, called once per kind from
that kind's ``register``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from modelyard.api import wire
from modelyard.controllers import context, options, ownership, webhook
from modelyard.statusapi import cache

GROUP = wire.GROUP
MANAGED = {wire.MANAGED_BY: wire.PRODUCT}
"""Labels of every child the operator makes."""

ENDPOINT_WEBHOOK = webhook.Handler("validate-endpoint", wire.MODEL_ENDPOINTS)
TRAINING_WEBHOOK = webhook.Handler("validate-training-job", wire.TRAINING_JOBS)
ENTRY_WEBHOOK = webhook.Handler("validate-entry", wire.MODEL_ENTRIES)
ADMISSION = (ENDPOINT_WEBHOOK, TRAINING_WEBHOOK, ENTRY_WEBHOOK)
"""The validating handlers: kopf ids (the webhook URL paths) and what each checks."""

Check = Callable[[context.Context, dict[str, Any], list[str]], Awaitable[None]]
"""An admission check (:mod:`modelyard.controllers.admission`): appends warnings, raises to deny."""


def mirror(registry: kopf.OperatorRegistry, plural: str, status_cache: cache.Cache | None) -> None:
    """Keep the status API's cache of ``plural`` as the watch sees it (nothing without a cache)."""
    if status_cache is None:
        return

    @kopf.on.event(GROUP, plural, registry=registry)
    async def mirror(type: str | None, body: Any, **_: Any) -> None:
        obj = dict(body)
        if type == "DELETED":
            meta = obj.get("metadata") or {}
            status_cache.delete(str(obj.get("kind")), meta.get("namespace"), str(meta.get("name")))
        else:
            status_cache.upsert(obj)


def validation(
    registry: kopf.OperatorRegistry,
    ctx: context.Context,
    opts: options.OperatorOptions,
    handler: webhook.Handler,
    check: Check,
) -> None:
    """The validating webhook handler of one kind (nothing when the webhook is off)."""
    if not opts.webhook:
        return

    @kopf.on.validate(
        GROUP, handler.plural, id=handler.id, operations=list(handler.operations),
        ignore_failures=opts.failure_policy == "Ignore", registry=registry,
    )  # fmt: skip
    async def validate(body: Any, warnings: list[str], old: Any = None, **_: Any) -> None:
        if old is not None and ownership.plain(old.get("spec")) == ownership.plain(body.get("spec")):
            return  # labels, annotations, finalizers: never deny them (kopf's own, a deletion's)
        await check(ctx, dict(body), warnings)
