"""Holding requests for an endpoint at zero replicas until it has a ready pod.

When the weighted pick (:mod:`modelyard.gateway.balancer`) lands on an endpoint with no ready
pod that holds requests (:attr:`routes.Endpoint.waits`: autoscaled, scaled to zero, or coming
up), the request waits here instead of failing. While it waits it counts in
``modelyard_gateway_endpoint_demand`` of that endpoint, which is what the operator reads to
wake it. Discovery calls :meth:`Holds.table_changed` on every route-table swap; each waiter
then looks at its endpoint in the new table: a ready pod sends the request, a status that
says the endpoint cannot come up (phase Failed, reason Unschedulable) ends it. No polling.

A held request ends with an OpenAI-shaped 503 and ``Retry-After`` (:class:`HoldFailed`) when

* ``--hold-queue`` requests already wait for the same served name (``queue_full``, at once);
* ``--hold-timeout`` seconds pass (``timeout``);
* the endpoint's status turns phase Failed or reason Unschedulable, or it leaves the routes
  (``unavailable``; the message carries the status reason and message).

Outcomes count in ``modelyard_gateway_held_total{model,outcome}`` (also ``sent`` and
``cancelled``, when the request timeout struck first; a client that leaves while held stays
counted until its hold ends, since aiohttp does not cancel a handler on disconnect); the requests waiting now
are ``modelyard_gateway_held_requests{model}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from modelyard.gateway import metrics, routes, settings, upstream

RETRY_AFTER = 10
"""Seconds a client is told to wait after a held request failed."""


class HoldFailed(upstream.AttemptFailed):
    """A held request cannot be sent; ``reason`` is the outcome (queue_full, timeout, unavailable)."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(outcome, message, 503)
        self.retry_after = RETRY_AFTER


class Holds:
    """The requests held per served name, woken on every route-table swap."""

    def __init__(
        self, config: settings.Settings, stats: metrics.Metrics, table: Callable[[], routes.RouteTable]
    ) -> None:
        self.timeout = config.hold_timeout
        self.limit = config.hold_queue
        self.metrics = stats
        self._table = table
        self._held: dict[str, int] = {}
        self._changed = asyncio.Event()

    def table_changed(self) -> None:
        """Wake every waiter to look at the new table (discovery calls this after a swap)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def held(self, served: str) -> int:
        return self._held.get(served, 0)

    async def wait(self, model: routes.Model, endpoint: routes.Endpoint) -> routes.Model:
        """Hold until ``endpoint`` of ``model`` has a target; the served name's current model.

        Raises :class:`HoldFailed`."""
        served = model.name
        if self._held.get(served, 0) >= self.limit:
            self._outcome(served, "queue_full")
            raise HoldFailed(
                "queue_full",
                f"{self.limit} requests already wait for model '{served}' to come up (--hold-queue)",
            )
        self._held[served] = self._held.get(served, 0) + 1
        gauge = self.metrics.child(self.metrics.held, served)
        demand = self.metrics.endpoint(endpoint.name)[0]
        gauge.inc()
        demand.inc()
        outcome = "cancelled"
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    changed = self._changed
                    current = self._table().get(served)
                    found = current.endpoint(endpoint.name) if current is not None else None
                    if current is not None and found is not None and found.targets:
                        outcome = "sent"
                        return current
                    if found is None or found.down is not None:
                        outcome = "unavailable"
                        why = found.down if found is not None else "it is no longer routed"
                        raise HoldFailed(
                            "unavailable", f"model '{served}': endpoint {endpoint.name} cannot come up: {why}"
                        )
                    await changed.wait()
        except TimeoutError:
            outcome = "timeout"
            raise HoldFailed(
                "timeout",
                f"model '{served}': endpoint {endpoint.name} had no ready replica within "
                f"{self.timeout:g}s (--hold-timeout)",
            ) from None
        finally:
            gauge.dec()
            demand.dec()
            self._held[served] -= 1
            if not self._held[served]:
                del self._held[served]
            self._outcome(served, outcome)

    def _outcome(self, served: str, outcome: str) -> None:
        self.metrics.child(self.metrics.held_outcomes, served, outcome).inc()
