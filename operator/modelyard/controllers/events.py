"""Kubernetes Events on the operator's objects (``kubectl describe modelendpoint NAME``), posted
in the background by the operator's own client: best effort, so a failure is logged and never
fails or delays a reconcile.

Why not ``kopf.event``: it finds kopf's posting queue in a context variable that only code
started from one of kopf's handlers has, and reconciles also start from the children's watches
(:mod:`.child_watches`), which are not kopf's; an event posted from one of those was lost.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from modelyard.controllers import cluster

log = logging.getLogger(__name__)

EVENT = ("v1", "Event")
COMPONENT = "modelyard-operator"
"""``source.component``: the "From" column of ``kubectl describe``."""
MESSAGE_LIMIT = 1024


class Poster:
    def __init__(self, kube: cluster.Cluster) -> None:
        self._kube = kube
        self._pending: set[asyncio.Task[None]] = set()

    def post(self, body: dict[str, Any], type: str, reason: str, message: str) -> None:
        """Post an event on ``body`` (an object with apiVersion, kind and metadata) soon."""
        task = asyncio.get_running_loop().create_task(self._post(event(body, type, reason, message)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, obj: dict[str, Any]) -> None:
        try:
            await self._kube.create(obj)
        except Exception as exc:  # events are best effort
            log.warning("could not post an event (%s): %s", exc, obj["message"])

    async def drain(self) -> None:
        """Wait for the events posted so far (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def event(body: dict[str, Any], type: str, reason: str, message: str) -> dict[str, Any]:
    """The Event object (core v1, as ``kubectl describe`` shows it)."""
    meta = body.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    now = datetime.datetime.now(datetime.UTC).isoformat()
    involved = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "name": meta.get("name"),
        "namespace": namespace,
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": namespace, "generateName": f"{meta.get('name')}."},
        "type": type,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "action": reason,
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "source": {"component": COMPONENT},
        "involvedObject": {k: v for k, v in involved.items() if v is not None},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
