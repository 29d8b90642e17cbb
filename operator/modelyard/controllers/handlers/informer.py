"""The informer's indices of the custom kinds (:mod:`modelyard.controllers.informer`): one
``@kopf.index`` per kind a reconcile reads, fed by the watches kopf has anyway. kopf fills them
from its first listing before any other handler runs, and drops an object on its deletion. The
children's come from the operator's own watches (:mod:`modelyard.controllers.child_watches`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from modelyard.api import wire
from modelyard.controllers import cluster, context, informer
from modelyard.controllers.handlers import common

_WATCHED: Mapping[cluster.Kind, tuple[str, str, Mapping[str, Any] | None]] = {
    cluster.MODEL_ENTRY: (common.GROUP, wire.MODEL_ENTRIES, None),
    cluster.MODEL_ENDPOINT: (common.GROUP, wire.MODEL_ENDPOINTS, None),
    cluster.TRAINING_JOB: (common.GROUP, wire.TRAINING_JOBS, None),
}


def register(registry: kopf.OperatorRegistry, ctx: context.Context) -> None:
    for kind, (group, plural, labels) in _WATCHED.items():
        _index(registry, ctx, kind, group, plural, labels)


def _index(
    registry: kopf.OperatorRegistry,
    ctx: context.Context,
    kind: cluster.Kind,
    group: str,
    plural: str,
    labels: Mapping[str, Any] | None,
) -> None:
    # async, though it awaits nothing: kopf runs a sync handler on a worker thread, and the hop
    # there and back for every event of every watched kind cost more than the trim itself
    @kopf.index(group, plural, id=informer.INDICES[kind], labels=labels, registry=registry)
    async def index(body: Any, **_: Any) -> dict[Any, dict[str, Any]]:
        obj = informer.trim(body)
        key = informer.key_of(kind, obj)
        return {key: obj} if key is not None else {}  # {}: out of the index (None would keep it)
