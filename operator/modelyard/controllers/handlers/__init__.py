"""kopf's handlers of the operator, one registration function per concern.

Handlers only translate kopf's events into "reconcile this object soon" (debounced, through
:class:`~modelyard.controllers.context.Context`); each reconcile reads the current object
from the watches' indices (:mod:`modelyard.controllers.informer`), so a burst of pod events
costs one reconcile and a handler that runs twice changes nothing.

=====================  ===============================================================
module                 registers
=====================  ===============================================================
:mod:`.kopf_settings`  kopf's persistence, posting, watching and webhook server; login
:mod:`.informer`       the indices reconciles read instead of GETs (entries, endpoints,
                       their Deployments, Services and Pods)
:mod:`.endpoint`       ModelEndpoint: changes, its Deployments/Services/Pods, ownership,
                       the status API's cache, ``validate-endpoint``
:mod:`.training`       TrainingJob: changes, its Jobs/Pods, the cache,
                       ``validate-training-job``
:mod:`.entry`          ModelEntry: changes, ownership, the cache, ``validate-entry``
:mod:`.common`         what every kind registers alike: the cache mirror, the validation
=====================  ===============================================================
"""

from __future__ import annotations

import kopf

from modelyard.controllers import context, options
from modelyard.controllers.handlers import endpoint, entry, informer, kopf_settings, training
from modelyard.statusapi import cache

__all__ = ["build_registry"]


def build_registry(
    ctx: context.Context, opts: options.OperatorOptions, status_cache: cache.Cache | None = None
) -> kopf.OperatorRegistry:
    """Every handler of the operator, registered on a registry of its own."""
    registry = kopf.OperatorRegistry()
    kopf_settings.register(registry, ctx, opts)
    informer.register(registry, ctx)
    # The order of ADMISSION (common.py): kopf lists the webhooks it manages as registered.
    endpoint.register(registry, ctx, opts, status_cache)
    training.register(registry, ctx, opts, status_cache)
    entry.register(registry, ctx, opts, status_cache)
    return registry
