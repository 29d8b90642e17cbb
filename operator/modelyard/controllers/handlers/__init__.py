"""kopf's handlers of the operator, one registration function per concern.

Handlers only translate kopf's events into "reconcile this object soon" (debounced, through
:class:`~modelyard.controllers.context.Context`); each reconcile reads the current object
from the watches' indices (:mod:`modelyard.controllers.informer`), so a burst of pod events
costs one reconcile and a handler that runs twice changes nothing.

=====================  ===============================================================
module                 registers
=====================  ===============================================================
:mod:`.kopf_settings`  kopf's persistence, posting, watching and webhook server; login
:mod:`.endpoint`       ModelEndpoint: ``validate-endpoint``
:mod:`.training`       TrainingJob: changes, the status API's cache,
                       ``validate-training-job``
:mod:`.entry`          ModelEntry: ``validate-entry``
:mod:`.common`         what every kind registers alike: the cache mirror, the validation
=====================  ===============================================================

ModelEntries, ModelEndpoints and the children are watched by the operator's own watches
(:mod:`modelyard.controllers.custom_watches`, :mod:`modelyard.controllers.child_watches`), not
by kopf: kopf watches TrainingJobs only.
"""

from __future__ import annotations

import kopf

from modelyard.controllers import context, options
from modelyard.controllers.handlers import endpoint, entry, kopf_settings, training
from modelyard.statusapi import cache

__all__ = ["build_registry"]


def build_registry(
    ctx: context.Context, opts: options.OperatorOptions, status_cache: cache.Cache | None = None
) -> kopf.OperatorRegistry:
    """Every handler of the operator, registered on a registry of its own."""
    registry = kopf.OperatorRegistry()
    kopf_settings.register(registry, ctx, opts)
    # The order of ADMISSION (common.py): kopf lists the webhooks it manages as registered.
    endpoint.register(registry, ctx, opts)
    training.register(registry, ctx, opts, status_cache)
    entry.register(registry, ctx, opts)
    return registry
