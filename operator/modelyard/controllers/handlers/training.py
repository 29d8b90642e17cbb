"""TrainingJob's handlers: a change to the job reconciles it at once (its batch Job's and pods'
events come from the operator's own watches, :mod:`modelyard.controllers.child_watches`)."""

from __future__ import annotations

from typing import Any

import kopf

from modelyard.api import wire
from modelyard.controllers import admission, context, options
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

    @on.resume(GROUP, wire.TRAINING_JOBS, registry=registry)
    @on.create(GROUP, wire.TRAINING_JOBS, registry=registry)
    @on.update(GROUP, wire.TRAINING_JOBS, registry=registry)
    async def training_changed(namespace: str | None, name: str, **_: Any) -> None:
        ctx.touch_training(namespace or "", name, delay=0)

    common.mirror(registry, wire.TRAINING_JOBS, status_cache)
    common.validation(registry, ctx, opts, common.TRAINING_WEBHOOK, admission.validate_training_job)
