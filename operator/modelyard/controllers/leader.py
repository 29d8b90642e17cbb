"""One operator replica at a time: a coordination.k8s.io Lease held by the active replica.

A replica waits until it holds the Lease ``modelyard-operator`` in its namespace, renews it
every ``renew`` seconds and stops the operator (exits) if another replica ever holds it, so two
replicas never reconcile at once. While the API server cannot be reached it holds its
reconciles back once the Lease may have expired, and resumes when it renews the Lease again
(see :meth:`Lease.keep`). A crashed holder is replaced after ``duration`` seconds.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import uuid
from typing import Any

from modelyard.controllers import cluster, kube_errors

log = logging.getLogger(__name__)

LEASE_NAME = "modelyard-operator"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _time(value: str | None) -> datetime.datetime | None:
    """A Lease's MicroTime (``2026-01-02T03:04:05.000000Z``)."""
    return None if not value else datetime.datetime.fromisoformat(value)


class Lease:
    def __init__(self, kube: cluster.Cluster, namespace: str, duration: int = 15, renew: int = 5) -> None:
        self.kube = kube
        self.namespace = namespace
        self.duration = duration
        self.renew = renew
        self.identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        # when another replica's hold runs out, by its last renewal (None: unknown or ours)
        self.expires: datetime.datetime | None = None

    def _body(self, existing: dict[str, Any] | None) -> dict[str, Any]:
        now = _now().isoformat()
        spec = (existing or {}).get("spec") or {}
        transitions = 0
        if existing is not None and spec.get("holderIdentity") != self.identity:
            transitions = (spec.get("leaseTransitions") or 0) + 1
        return {
            "apiVersion": cluster.LEASE[0],
            "kind": cluster.LEASE[1],
            "metadata": {"name": LEASE_NAME, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration,
                "acquireTime": now
                if transitions or existing is None or not spec.get("acquireTime")
                else spec["acquireTime"],
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }

    async def try_acquire(self) -> bool:
        """Take or renew the Lease if it is free, expired or ours."""
        self.expires = None
        existing = await self.kube.get(cluster.LEASE, LEASE_NAME, self.namespace)
        if existing is None:
            try:
                return await self.kube.create(self._body(None)) is not None
            except kube_errors.NotFoundError:
                raise SystemExit(
                    f"namespace {self.namespace!r} does not exist: create it, or pass --namespace"
                ) from None
        spec = existing.get("spec") or {}
        renewed = _time(spec.get("renewTime")) or _time(spec.get("acquireTime"))
        expires = (
            None
            if renewed is None
            else renewed + datetime.timedelta(seconds=spec.get("leaseDurationSeconds") or 15)
        )
        expired = expires is None or expires < _now()
        if spec.get("holderIdentity") not in (None, "", self.identity) and not expired:
            self.expires = expires
            return False
        body = self._body(existing)
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        return await self.kube.replace(body) is not None

    async def release(self) -> None:
        """Give the Lease up on a clean stop, so a standby takes over at once."""
        try:
            existing = await self.kube.get(cluster.LEASE, LEASE_NAME, self.namespace)
            if existing is None or (existing.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            body = {
                "metadata": {"resourceVersion": existing["metadata"]["resourceVersion"]},
                "spec": {"holderIdentity": ""},
            }
            await self.kube.merge_patch(cluster.LEASE, LEASE_NAME, self.namespace, body)
        except kube_errors.ApiError:
            log.warning("could not release the Lease", exc_info=True)

    def retry_in(self) -> float:
        """Seconds until a standby asks again: every ``renew`` seconds, but just past the holder's
        expiry when that comes sooner, so a dead holder is replaced within ``duration`` seconds
        of its last renewal rather than up to ``renew`` seconds later. (A skewed clock only moves
        when the standby asks; whether the hold has run out is decided by :meth:`try_acquire`.)"""
        if self.expires is None:
            return float(self.renew)
        until = (self.expires - _now()).total_seconds() + 0.2
        return min(float(self.renew), max(0.2, until))

    async def acquire(self) -> None:
        while not await self.try_acquire():
            log.info("waiting for the Lease %s/%s held by another replica", self.namespace, LEASE_NAME)
            await asyncio.sleep(self.retry_in())
        self.expires = None
        log.info("holding the Lease %s/%s as %s", self.namespace, LEASE_NAME, self.identity)

    async def keep(self, stop: asyncio.Event, leading: asyncio.Event | None = None) -> None:
        """Renew every ``renew`` seconds until ``stop``; set ``stop`` when another replica holds it.

        A renewal that fails (the API server restarting, say) is retried every second. Until
        ``duration`` seconds after the last renewal (less a second) no other replica can have taken
        the Lease, so nothing changes. After that ``leading`` is cleared, which holds reconciles
        back, until a renewal succeeds again (the Lease was still ours, or had expired with nobody
        taking it); without ``leading`` the operator stops then, as client-go's renew deadline.
        Finding the Lease held by another replica always stops it.
        """
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        failing = False
        while not stop.is_set():
            await asyncio.sleep(1.0 if failing else self.renew)
            attempt = loop.time()
            try:
                held = await self.try_acquire()
            except Exception as exc:
                if not failing:
                    log.warning("renewing the Lease failed (%s); retrying every second", exc)
                failing = True
                if loop.time() - renewed < self.duration - 1:
                    continue
                if leading is None:
                    log.error("could not renew the Lease %s/%s in time; stopping", self.namespace, LEASE_NAME)
                    stop.set()
                elif leading.is_set():
                    log.warning("the Lease may have expired: reconciles wait until it is renewed")
                    leading.clear()
                continue
            if not held:
                log.error("lost the Lease %s/%s; stopping", self.namespace, LEASE_NAME)
                stop.set()
                return
            renewed = attempt
            if failing:
                log.info("renewed the Lease %s/%s again", self.namespace, LEASE_NAME)
            failing = False
            if leading is not None and not leading.is_set():
                log.info("reconciles resume")
                leading.set()
