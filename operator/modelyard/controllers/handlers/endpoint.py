"""ModelEndpoint's kopf handler: ``validate-endpoint``, with the webhook on. Its events come from
the operator's own watch (:mod:`modelyard.controllers.custom_watches`), its children's from
the children's (:mod:`modelyard.controllers.child_watches`)."""

from __future__ import annotations

import kopf

from modelyard.controllers import admission, context, options
from modelyard.controllers.handlers import common


def register(registry: kopf.OperatorRegistry, ctx: context.Context, opts: options.OperatorOptions) -> None:
    common.validation(registry, ctx, opts, common.ENDPOINT_WEBHOOK, admission.validate_endpoint)
