"""The pods' own queue signal: what each Ready pod says it is running and holding.

With several gateway replicas, each one's in-flight count is only its share of a pod's load,
and clients may reach a pod by its Service without any gateway. Every pod speaks the
Inference Extension's model-server protocol (the runtime's ``/metrics`` on either engine,
:mod:`modelyard.runtime.metrics`; vLLM's own), so :class:`PodLoad` scrapes each pod target's
``/metrics`` every ``--pod-metrics-interval`` seconds and keeps
``vllm:num_requests_running + vllm:num_requests_waiting`` (summed over label sets: a pod may
serve several models).

That figure counts this gateway's own requests as they were when the pod answered, and a
request may finish a moment later: under sequential load a scrape that caught the previous
request would make an idle pod look busy until the next scrape. So with each figure PodLoad
keeps this gateway's own in-flight count to that pod at the scrape (the balancer's
:meth:`~modelyard.gateway.balancer.Balancer.in_flight`, read when the scrape is sent and when
its answer comes, the larger of the two: a request that finished in between is then not
counted twice, and the error is on the side of counting others short). :meth:`PodLoad.others`
is the rest, ``max(0, reported - own at the scrape)``: every other client's and gateway
replica's requests. The balancer weighs a pod by ``own in flight now + others``
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
import dataclasses
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
InFlight = Callable[[str], int]
"""This gateway's own requests in flight to a target, by target key
(:meth:`modelyard.gateway.balancer.Balancer.in_flight`)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Figure:
    """What one scrape of a pod found."""

    reported: float
    """The pod's running + waiting."""
    own: int
    """This gateway's requests in flight to the pod at the scrape (counted in ``reported``)."""
    when: float
    endpoint: str


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
        self._figures: dict[str, Figure] = {}  # by target key
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
        figure = self._fresh(target_key)
        return None if figure is None else figure.reported

    def others(self, target_key: str) -> float | None:
        """The pod's running + waiting at its last scrape less this gateway's own requests to it
        then (never below 0): every other client's load. None when unknown or stale."""
        figure = self._fresh(target_key)
        return None if figure is None else max(0.0, figure.reported - figure.own)

    def _fresh(self, target_key: str) -> Figure | None:
        figure = self._figures.get(target_key)
        if figure is None or self._clock() - figure.when > self.stale_after:
            return None
        return figure

    def record(self, target_key: str, value: float, *, own: int = 0, endpoint: str = "") -> None:
        """Store a pod's queue length as of now, and this gateway's requests in flight to it
        that the figure counts (the scrape's, or a test's)."""
        self._figures[target_key] = Figure(value, own, self._clock(), endpoint)

    def known(self) -> list[tuple[str, str, float]]:
        """(endpoint, target key, queue length) of every pod whose figure is not stale
        (exported as ``modelyard_gateway_pod_queue``)."""
        now = self._clock()
        return [
            (f.endpoint, key, f.reported)
            for key, f in self._figures.items()
            if now - f.when <= self.stale_after
        ]

    async def start(self, table: Callable[[], routes.RouteTable], in_flight: InFlight) -> None:
        """Scrape the pods of the current route table every interval, in the background, noting
        with each figure ``in_flight(target key)``, this gateway's own requests to the pod."""
        if not self.enabled or self._task is not None:
            return
        connector = aiohttp.TCPConnector(limit=CONCURRENCY, limit_per_host=1, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._task = asyncio.create_task(self._loop(table, in_flight), name="pod-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def scrape(self, table: routes.RouteTable, in_flight: InFlight) -> None:
        """One round: every pod target, :data:`CONCURRENCY` at a time; forget pods gone."""
        targets = pod_targets(table)
        for key in [k for k in self._figures if k not in targets]:
            del self._figures[key]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(key: str, endpoint: str, url: str) -> None:
            async with gate:
                await self._scrape_one(key, endpoint, url, in_flight)

        await asyncio.gather(*(one(key, *where) for key, where in targets.items()))

    async def _loop(self, table: Callable[[], routes.RouteTable], in_flight: InFlight) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.scrape(table(), in_flight)
            except Exception:  # never let the task die: the next round tries again
                log.exception("pod metrics round failed")
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    async def _scrape_one(self, key: str, endpoint: str, url: str, in_flight: InFlight) -> None:
        assert self._session is not None
        own = in_flight(key)
        try:
            async with self._session.get(url) as response:
                # the pod counted between the send and its answer: what ran at either moment
                own = max(own, in_flight(key))
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
            self._figures.pop(key, None)
            self._on_error(endpoint)
            log.debug("pod metrics of %s at %s: %s", key, url, exc)
            return
        self.record(key, value, own=own, endpoint=endpoint)
