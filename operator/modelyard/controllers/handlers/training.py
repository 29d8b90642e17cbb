"""TrainingJob's handlers: a change to the job reconciles it at once, an event of its batch Job
or pods (labelled with ``wire.TRAINING_JOB``) a little later."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from modelyard.api import wire
from modelyard.controllers import admission, context, options
from modelyard.controllers.handlers import common
from modelyard.statusapi import cache

GROUP = common.GROUP
CHILDREN: Mapping[str, Any] = {**common.MANAGED, wire.TRAINING_JOB: kopf.PRESENT}
"""The labels of a training job's batch Job and pods."""


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

    @on.event("batch/v1", "jobs", labels=CHILDREN, registry=registry)
    @on.event("v1", "pods", labels=CHILDREN, registry=registry)
    async def training_child_event(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
        ctx.touch_training(namespace or "", labels[wire.TRAINING_JOB], delay=0.3)

    common.mirror(registry, wire.TRAINING_JOBS, status_cache)
    common.validation(registry, ctx, opts, common.TRAINING_WEBHOOK, admission.validate_training_job)
