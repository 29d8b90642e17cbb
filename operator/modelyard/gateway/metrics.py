"""Prometheus metrics of one gateway app, in a registry of its own (no global default).

Names (all prefixed ``modelyard_gateway_``):

* ``requests_total`` / ``request_duration_seconds`` by model, endpoint and code: what clients saw
  (endpoint is the ModelEndpoint that answered, ``none`` when none did);
* ``upstream_first_byte_seconds`` by model and endpoint: response headers (or first SSE
  event) after the request was sent;
* ``overhead_seconds``: gateway time before the request left for its first target (auth,
  body scan, routing);
* ``retries_total`` by model and reason, ``fallbacks_total`` by model and fallback,
  ``ejections_total`` by endpoint;
* ``stream_resumptions_total`` by model and outcome: streams that broke mid-answer, by how
  they ended (``resumed`` on another target, ``failed``: every attempt to continue failed,
  ``unsupported``: not resumable, :mod:`modelyard.gateway.resume`);
* ``tokens_total`` by model and kind (prompt, completion), from the ``usage`` of responses;
* ``in_flight`` by endpoint and target (series of targets gone from the routes are dropped);
  ``requests_in_flight``: requests being forwarded, all together (``--max-in-flight``);
* ``limited_total`` by limit: requests and answers cut short by a bound (the limits are listed
  in :mod:`modelyard.gateway.limits`);
* ``key_limited_total`` by key name and limit (``rpm``, ``tpm``, ``concurrency``): requests
  refused with 429 by a key's own limits;
* ``upstream_key_unreadable`` by endpoint and secret: 1 for each upstream endpoint left out of
  routing because the gateway may not read its key Secret (read from the route table when
  scraped, see :meth:`Metrics.watch_routes`);
* ``endpoint_demand`` by namespace and endpoint (ModelEndpoint): requests in flight to it plus
  requests held for it; a series exists (0 allowed) for every endpoint in the routes. The
  operator sums it over the gateway replicas to scale the endpoint;
* ``endpoint_requests_total`` by namespace and endpoint: requests sent to it (each attempt);
* ``held_requests`` by model: requests waiting for an endpoint at zero to come up;
  ``held_total`` by model and outcome (``sent``, ``timeout``, ``queue_full``, ``unavailable``,
  ``cancelled``): how held requests ended (:mod:`modelyard.gateway.hold`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import prometheus_client
import prometheus_client.core
import prometheus_client.metrics
import prometheus_client.registry

from modelyard.gateway import routes

_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
_SLOW = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """The gateway's collectors, registered in :attr:`registry`."""

    def __init__(self, registry: prometheus_client.CollectorRegistry | None = None) -> None:
        self.registry = registry or prometheus_client.CollectorRegistry(auto_describe=True)
        r = self.registry
        p = "modelyard_gateway_"
        self.requests = prometheus_client.Counter(
            p + "requests", "Requests answered", ["model", "endpoint", "code"], registry=r
        )
        self.duration = prometheus_client.Histogram(
            p + "request_duration_seconds",
            "Time to the last byte of the response",
            ["model", "endpoint", "code"],
            buckets=_SLOW,
            registry=r,
        )
        self.first_byte = prometheus_client.Histogram(
            p + "upstream_first_byte_seconds",
            "Time from sending to a target to its first byte",
            ["model", "endpoint"],
            buckets=_SLOW,
            registry=r,
        )
        self.overhead = prometheus_client.Histogram(
            p + "overhead_seconds", "Time spent in the gateway itself", buckets=_FAST, registry=r
        )
        self.retries = prometheus_client.Counter(
            p + "retries", "Attempts retried", ["model", "reason"], registry=r
        )
        self.resumptions = prometheus_client.Counter(
            p + "stream_resumptions",
            "Streams broken mid-answer, by how they ended",
            ["model", "outcome"],
            registry=r,
        )
        self.fallbacks = prometheus_client.Counter(
            p + "fallbacks", "Requests sent to a fallback model", ["model", "fallback"], registry=r
        )
        self.ejections = prometheus_client.Counter(
            p + "ejections", "Targets ejected after consecutive failures", ["endpoint"], registry=r
        )
        self.tokens = prometheus_client.Counter(
            p + "tokens", "Tokens reported in usage", ["model", "kind"], registry=r
        )
        self.key_limited = prometheus_client.Counter(
            p + "key_limited", "Requests refused by an API key's limits", ["key", "limit"], registry=r
        )
        self.in_flight = prometheus_client.Gauge(
            p + "in_flight", "Requests in flight per target", ["endpoint", "target"], registry=r
        )
        self.requests_in_flight = prometheus_client.Gauge(
            p + "requests_in_flight", "Requests being forwarded, all clients", registry=r
        )
        self.limited = prometheus_client.Counter(
            p + "limited", "Requests or answers cut short by a bound", ["limit"], registry=r
        )

        self.endpoint_demand = prometheus_client.Gauge(
            p + "endpoint_demand",
            "Requests in flight to a ModelEndpoint plus requests held for it",
            ["namespace", "endpoint"],
            registry=r,
        )
        self.endpoint_requests = prometheus_client.Counter(
            p + "endpoint_requests", "Requests sent to a ModelEndpoint", ["namespace", "endpoint"], registry=r
        )
        self.held = prometheus_client.Gauge(
            p + "held_requests", "Requests waiting for an endpoint at zero to come up", ["model"], registry=r
        )
        self.held_outcomes = prometheus_client.Counter(
            p + "held", "Held requests by how they ended", ["model", "outcome"], registry=r
        )

        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self._endpoints: dict[str, tuple[Any, Any]] = {}
        self._table: routes.RouteTable | None = None
        self._source: Callable[[], routes.RouteTable] | None = None

    def child(self, metric: prometheus_client.metrics.MetricWrapperBase, *values: str) -> Any:
        """``metric.labels(*values)``, memoised: the hot path asks for the same few children."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def endpoint(self, name: str) -> tuple[Any, Any]:
        """The (``endpoint_demand``, ``endpoint_requests``) children of ModelEndpoint ``name``
        (``namespace/name``): one dict lookup on the hot path."""
        found = self._endpoints.get(name)
        if found is None:
            labels = name.split("/", 1) if "/" in name else ["", name]
            found = self._endpoints[name] = (
                self.endpoint_demand.labels(*labels),
                self.endpoint_requests.labels(*labels),
            )
        return found

    def follow(self, table: routes.RouteTable) -> None:
        """Drop the ``in_flight`` series of targets gone from the routes (pods come and go);
        give every endpoint in the routes its demand series, and drop those of endpoints gone."""
        if table is self._table:
            return
        self._table = table
        live = {(e.name, t.key) for m in table.models.values() for e in m.endpoints for t in e.targets}
        for key in [k for k in self._children if k[0] is self.in_flight and k[1] not in live]:
            # requests still in flight keep their (now unexported) child until they end
            del self._children[key]
            self.in_flight.remove(*key[1])
        endpoints = {e.name for m in table.models.values() for e in m.endpoints}
        for name in endpoints:
            self.endpoint(name)
        for name in [n for n in self._endpoints if n not in endpoints]:
            del self._endpoints[name]
            labels = name.split("/", 1) if "/" in name else ["", name]
            self.endpoint_demand.remove(*labels)
            self.endpoint_requests.remove(*labels)

    def watch_routes(self, table: Callable[[], routes.RouteTable]) -> None:
        """Export what the current route table says about unreadable upstream key Secrets, and
        follow it (:meth:`follow`) on every scrape."""
        self._source = table
        self.registry.register(_UnreadableKeys(table))

    def exposition(self) -> bytes:
        if self._source is not None:
            self.follow(self._source())
        return prometheus_client.generate_latest(self.registry)

    def count_usage(self, model: str, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        for kind in ("prompt", "completion"):
            value = usage.get(f"{kind}_tokens")
            if isinstance(value, int) and value > 0:
                self.tokens.labels(model, kind).inc(value)


class _UnreadableKeys(prometheus_client.registry.Collector):
    def __init__(self, table: Callable[[], routes.RouteTable]) -> None:
        self._table = table

    @staticmethod
    def _family() -> prometheus_client.core.GaugeMetricFamily:
        return prometheus_client.core.GaugeMetricFamily(
            "modelyard_gateway_upstream_key_unreadable",
            "Upstream endpoints not routed: the gateway may not read their key Secret",
            labels=["endpoint", "secret"],
        )

    def describe(self) -> Iterator[prometheus_client.core.GaugeMetricFamily]:
        """The name alone, so registering never reads the route table (which may not be ready)."""
        yield self._family()

    def collect(self) -> Iterator[prometheus_client.core.GaugeMetricFamily]:
        family = self._family()
        for endpoint, secret in self._table().unreadable_keys:
            family.add_metric([endpoint, secret], 1.0)
        yield family
