"""ModelEntry's kopf handler: ``validate-entry``, with the webhook on. Its events come from the
operator's own watch (:mod:`modelyard.controllers.custom_watches`); kopf writes nothing onto an
entry."""

from __future__ import annotations

import kopf

from modelyard.controllers import admission, context, options
from modelyard.controllers.handlers import common


def register(registry: kopf.OperatorRegistry, ctx: context.Context, opts: options.OperatorOptions) -> None:
    common.validation(registry, ctx, opts, common.ENTRY_WEBHOOK, admission.validate_entry)
