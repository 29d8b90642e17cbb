"""The pods' own queue signal: what each Ready pod says it is running and holding.

With several gateway replicas, each one's in-flight count is only its share of a pod's load,
and clients may reach a pod by its Service without any gateway. Every pod speaks the
Inference Extension's model-server protocol (the runtime's ``/metrics`` on either engine,
:mod:`modelyard.runtime.metrics`; vLLM's own), so :class:`PodLoad` scrapes each pod target's
``/metrics`` every ``--pod-metrics-interval`` seconds and keeps
``vllm:num_requests_running + vllm:num_requests_waiting`` (summed over label sets: a pod may
serve several models). The balancer weighs a pod by ``max(own in flight, reported)``
(:meth:`modelyard.gateway.balancer.WeightedLeastBusy.load`).

It never stands in a request's way: the scrape runs as a background task on a connection pool
of its own (``CONCURRENCY`` connections, so it never takes the proxy's), each scrape bounded by
a short timeout; a pod that does not answer, answers badly, or was last heard from more than
``STALE_INTERVALS`` intervals ago is unknown (None), and the balancer falls back to its own
count. Upstream (external API) targets are never scraped. What the gateway knows is exported as
``modelyard_gateway_pod_queue{endpoint,target}``; failed scrapes are counted in
``modelyard_gateway_pod_metrics_errors_total{endpoint}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

import aiohttp
import prometheus_client.parser

from modelyard.gateway import routes

log = logging.getLogger(__name__)

SIGNALS = ("vllm:num_requests_running", "vllm:num_requests_waiting")
"""The samples summed into a pod's reported load."""
CONCURRENCY = 16
"""Scrapes in flight at once (and the size of the scraper's own connection pool)."""
MAX_TIMEOUT = 1.0
MIN_TIMEOUT = 0.5
"""Seconds one scrape may take: the interval, within these bounds (a busy pod's event loop
may take a while to answer, and a round waits for its slowest pod)."""
STALE_INTERVALS = 3
"""A value older than this many intervals (or timeouts, when longer) counts as unknown."""
MAX_BYTES = 4 * 1024 * 1024
"""A /metrics page larger than this is an error (a pod is not a metrics aggregator)."""

OnError = Callable[[str], None]
"""Called with the ModelEndpoint (``namespace/name``) of each failed scrape."""


def queue_length(text: str) -> float:
    """``running + waiting`` summed over every label set of a Prometheus text page.

    Only the lines of :data:`SIGNALS` reach prometheus_client's parser: a runtime's page holds
    histograms of every model, and parsing all of it every second for every pod would cost the
    gateway's event loop more than the requests it routes. Raises ValueError when the page has
    neither name (not a model server that speaks the protocol).
    """
    kept = [line for line in text.splitlines() if line.startswith(SIGNALS)]
    total = 0.0
    seen = False
    for family in prometheus_client.parser.text_string_to_metric_families("\n".join(kept) + "\n"):
        for sample in family.samples:
            if sample.name in SIGNALS:
                value = float(sample.value)
                if not math.isfinite(value) or value < 0:
                    raise ValueError(f"{sample.name} is {sample.value}")
                seen = True
                total += value
    if not seen:
        raise ValueError(f"no {' or '.join(SIGNALS)} on the page")
    return total


def pod_targets(table: routes.RouteTable) -> dict[str, tuple[str, str]]:
    """target key -> (its ModelEndpoint, its ``/metrics`` URL), for pod targets only: upstream
    endpoints' targets are other people's APIs."""
    found: dict[str, tuple[str, str]] = {}
    for model in table.models.values():
        for endpoint in model.endpoints:
            if endpoint.upstream is not None:
                continue
            for target in endpoint.targets:
                found[target.key] = (endpoint.name, target.base.removesuffix("/v1") + "/metrics")
    return found


class PodLoad:
    """The last queue length each pod target reported; refreshed by :meth:`start`'s task."""

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.timeout = min(MAX_TIMEOUT, max(MIN_TIMEOUT, interval))
        self.stale_after = STALE_INTERVALS * max(interval, self.timeout)
        self._on_error: OnError = lambda _endpoint: None
        self._clock = clock
        self._values: dict[str, tuple[float, float, str]] = {}  # key -> (queue length, when, endpoint)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def on_error(self, callback: OnError) -> None:
        """Call ``callback(endpoint)`` on each failed scrape (the app counts them)."""
        self._on_error = callback

    def reported(self, target_key: str) -> float | None:
        """The pod's running + waiting at its last scrape; None when unknown or stale."""
        found = self._values.get(target_key)
        if found is None:
            return None
        value, when, _ = found
        if self._clock() - when > self.stale_after:
            return None
        return value

    def record(self, target_key: str, value: float, endpoint: str = "") -> None:
        """Store a pod's queue length as of now (the scrape's, or a test's)."""
        self._values[target_key] = (value, self._clock(), endpoint)

    def known(self) -> list[tuple[str, str, float]]:
        """(endpoint, target key, queue length) of every pod whose figure is not stale
        (exported as ``modelyard_gateway_pod_queue``)."""
        now = self._clock()
        return [(e, key, v) for key, (v, when, e) in self._values.items() if now - when <= self.stale_after]

    async def start(self, table: Callable[[], routes.RouteTable]) -> None:
        """Scrape the pods of the current route table every interval, in the background."""
        if not self.enabled or self._task is not None:
            return
        connector = aiohttp.TCPConnector(limit=CONCURRENCY, limit_per_host=1, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._task = asyncio.create_task(self._loop(table), name="pod-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def scrape(self, table: routes.RouteTable) -> None:
        """One round: every pod target, :data:`CONCURRENCY` at a time; forget pods gone."""
        targets = pod_targets(table)
        for key in [k for k in self._values if k not in targets]:
            del self._values[key]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(key: str, endpoint: str, url: str) -> None:
            async with gate:
                await self._scrape_one(key, endpoint, url)

        await asyncio.gather(*(one(key, *where) for key, where in targets.items()))

    async def _loop(self, table: Callable[[], routes.RouteTable]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.scrape(table())
            except Exception:  # never let the task die: the next round tries again
                log.exception("pod metrics round failed")
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    async def _scrape_one(self, key: str, endpoint: str, url: str) -> None:
        assert self._session is not None
        try:
            async with self._session.get(url) as response:
                if response.status != 200:
                    raise ValueError(f"HTTP {response.status}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise ValueError(f"page over {MAX_BYTES} bytes")
                    chunks.append(chunk)
            value = queue_length(b"".join(chunks).decode("utf-8", "replace"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._values.pop(key, None)
            self._on_error(endpoint)
            log.debug("pod metrics of %s at %s: %s", key, url, exc)
            return
        self.record(key, value, endpoint)
