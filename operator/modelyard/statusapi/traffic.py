"""Live traffic per ModelEndpoint for the dashboard, from what the gateways report.

The gateways export per endpoint ``modelyard_gateway_endpoint_demand`` (in flight + held),
``modelyard_gateway_endpoint_requests_total``, ``modelyard_gateway_request_duration_seconds``
(by model, endpoint ``namespace/name``, code) and ``modelyard_gateway_tokens_total`` (by model,
i.e. served name). :class:`Traffic` sums one scrape of every gateway replica
(:meth:`Traffic.record`), and rates come from the difference with the oldest scrape of the last
``window`` seconds (30): req/s, mean latency of the requests answered in that window, tokens/s
of the served name.

Why the status API reads the gateways and not the ModelEndpoint status: the operator writes
only the demand there (``status.autoscaling.demand``), once per scale decision; rates and
latency belong to no resource, and writing them every second would churn the API server.
The scrape URLs come from the host (``StatusApiSettings.gateway_metrics_urls``, the same
gateway metrics addresses the operator scrapes for demand), polled every
``traffic_interval_s`` while set; a gateway that cannot be scraped is left out of that round.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable

import aiohttp
from prometheus_client import parser

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EndpointTraffic:
    """What the dashboard shows per endpoint; None where there is no data yet."""

    demand: float | None = None
    requests_per_s: float | None = None
    latency_s: float | None = None
    tokens_per_s: float | None = None
    """Of the endpoint's served name (the gateways count tokens per model)."""


@dataclasses.dataclass
class _Totals:
    demand: dict[str, float] = dataclasses.field(default_factory=dict)
    sent: dict[str, float] = dataclasses.field(default_factory=dict)
    duration_sum: dict[str, float] = dataclasses.field(default_factory=dict)
    duration_count: dict[str, float] = dataclasses.field(default_factory=dict)
    tokens: dict[str, float] = dataclasses.field(default_factory=dict)


def _add(into: dict[str, float], key: str, value: float) -> None:
    into[key] = into.get(key, 0.0) + value


def parse(texts: Iterable[str]) -> _Totals:
    """The sums over the expositions of every gateway replica."""
    totals = _Totals()
    for text in texts:
        for family in parser.text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                endpoint = f"{labels.get('namespace', '')}/{labels.get('endpoint', '')}"
                if sample.name == "modelyard_gateway_endpoint_demand":
                    _add(totals.demand, endpoint, sample.value)
                elif sample.name == "modelyard_gateway_endpoint_requests_total":
                    _add(totals.sent, endpoint, sample.value)
                elif sample.name == "modelyard_gateway_request_duration_seconds_sum":
                    _add(totals.duration_sum, labels.get("endpoint", ""), sample.value)
                elif sample.name == "modelyard_gateway_request_duration_seconds_count":
                    _add(totals.duration_count, labels.get("endpoint", ""), sample.value)
                elif sample.name == "modelyard_gateway_tokens_total":
                    _add(totals.tokens, labels.get("model", ""), sample.value)
    return totals


class Traffic:
    """The last two scrapes of all gateways; ``changed`` is called when a new one lands."""

    def __init__(
        self,
        changed: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        window: float = 30.0,
    ) -> None:
        self._changed = changed
        self._clock = clock
        self._window = window
        self._history: collections.deque[tuple[float, _Totals]] = collections.deque()
        self._view: dict[str, EndpointTraffic] = {}
        self._served: dict[str, float] = {}

    def record(self, texts: Iterable[str]) -> None:
        now, totals = self._clock(), parse(texts)
        view: dict[str, EndpointTraffic] = {}
        while len(self._history) > 1 and self._history[1][0] <= now - self._window:
            self._history.popleft()
        previous = self._history[0] if self._history else None
        served_rates: dict[str, float] = {}
        if previous is not None and now > previous[0]:
            span, before = now - previous[0], previous[1]
            for model, count in totals.tokens.items():
                served_rates[model] = max(0.0, count - before.tokens.get(model, 0.0)) / span
        for endpoint in totals.demand.keys() | totals.sent.keys():
            rate = latency = None
            if previous is not None and now > previous[0]:
                span, before = now - previous[0], previous[1]
                rate = max(0.0, totals.sent.get(endpoint, 0.0) - before.sent.get(endpoint, 0.0)) / span
                answered = totals.duration_count.get(endpoint, 0.0) - before.duration_count.get(endpoint, 0.0)
                if answered > 0:
                    spent = totals.duration_sum.get(endpoint, 0.0) - before.duration_sum.get(endpoint, 0.0)
                    latency = spent / answered
            view[endpoint] = EndpointTraffic(totals.demand.get(endpoint), rate, latency)
        self._history.append((now, totals))
        if view != self._view or served_rates != self._served:
            self._view, self._served = view, served_rates
            self._changed()

    def of(self, endpoint: str, served_name: str) -> EndpointTraffic:
        """The traffic of ``namespace/name`` (no data: all None)."""
        found = self._view.get(endpoint, EndpointTraffic())
        return dataclasses.replace(found, tokens_per_s=self._served.get(served_name))

    async def poll(self, urls: Iterable[str], interval: float) -> None:
        """Scrape ``urls`` every ``interval`` seconds until cancelled."""
        timeout = aiohttp.ClientTimeout(total=max(1.0, interval))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                texts = await asyncio.gather(*(_scrape(session, u) for u in urls))
                self.record(t for t in texts if t is not None)
                await asyncio.sleep(interval)


async def _scrape(session: aiohttp.ClientSession, url: str) -> str | None:
    try:
        async with session.get(url) as response:
            if response.status == 200:
                return await response.text()
            log.warning("gateway metrics %s answered %d; left out of this round", url, response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("gateway metrics %s cannot be scraped (%s); left out of this round", url, exc)
    return None
