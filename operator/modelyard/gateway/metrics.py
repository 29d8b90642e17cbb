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
* ``prefix_spills_total`` by endpoint: PrefixHash picks that passed over the pod a request's
  key belongs to because it was at its load bound (read from the balancer when scraped);
* ``held_requests`` by model: requests waiting for an endpoint at zero to come up;
  ``held_total`` by model and outcome (``sent``, ``timeout``, ``queue_full``, ``unavailable``,
  ``cancelled``): how held requests ended (:mod:`modelyard.gateway.hold`);
* ``pod_queue`` by endpoint and target: running + waiting as the pod last reported it (pods not
  heard from lately have no series; read when scraped, :meth:`Metrics.watch_pods`);
* ``pod_metrics_errors_total`` by endpoint: scrapes of a pod's ``/metrics`` queue signal that
  failed (no answer in time, not 200, no ``vllm:num_requests_*``; :mod:`modelyard.gateway.podload`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import prometheus_client
import prometheus_client.core
import prometheus_client.metrics
import prometheus_client.registry

from modelyard.gateway import routes, unlocked

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
        self.overhead = unlocked.unlocked(
            prometheus_client.Histogram(
                p + "overhead_seconds", "Time spent in the gateway itself", buckets=_FAST, registry=r
            )
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
        self.pod_metrics_errors = prometheus_client.Counter(
            p + "pod_metrics_errors",
            "Failed scrapes of a pod's /metrics queue signal",
            ["endpoint"],
            registry=r,
        )

        self._pods: Callable[[], Iterable[tuple[str, str, float]]] = tuple
        r.register(_PodQueues(lambda: self._pods()))

        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self._endpoints: dict[str, tuple[Any, Any]] = {}
        self._table: routes.RouteTable | None = None
        self._live_targets: dict[tuple[str, str], int] = {}
        self._live_endpoints: dict[str, int] = {}
        self._fresh_targets: list[tuple[str, ...]] = []
        """``in_flight`` children made since the last :meth:`follow` (maybe for a target gone)."""
        self._fresh_endpoints: list[str] = []
        self._source: Callable[[], routes.RouteTable] | None = None

    def child(self, metric: prometheus_client.metrics.MetricWrapperBase, *values: str) -> Any:
        """``metric.labels(*values)``, memoised and unlocked (:func:`.unlocked.unlocked`): the hot path
        asks for the same few children."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = unlocked.unlocked(metric.labels(*values))
            if metric is self.in_flight:
                self._fresh_targets.append(values)
        return found

    def endpoint(self, name: str) -> tuple[Any, Any]:
        """The (``endpoint_demand``, ``endpoint_requests``) children of ModelEndpoint ``name``
        (``namespace/name``): one dict lookup on the hot path."""
        found = self._endpoints.get(name)
        if found is None:
            labels = name.split("/", 1) if "/" in name else ["", name]
            found = self._endpoints[name] = (
                unlocked.unlocked(self.endpoint_demand.labels(*labels)),
                unlocked.unlocked(self.endpoint_requests.labels(*labels)),
            )
            self._fresh_endpoints.append(name)
        return found

    def follow(self, table: routes.RouteTable) -> None:
        """Drop the ``in_flight`` series of targets gone from the routes (pods come and go);
        give every endpoint in the routes its demand series, and drop those of endpoints gone.

        Costs what changed since the table last followed: discovery rebuilds only the Models of
        the served names a change touches, so a Model that is the same object is skipped after
        one identity check, and live targets and endpoints are counted, not collected again.
        """
        if table is self._table:
            return
        before = self._table.models if self._table is not None else {}
        self._table = table
        dropped_targets, dropped_endpoints = set(self._fresh_targets), set(self._fresh_endpoints)
        self._fresh_targets, self._fresh_endpoints = [], []
        for name, model in table.models.items():
            old = before.get(name)
            if old is not model:
                if old is not None:
                    self._count(old, -1, dropped_targets, dropped_endpoints)
                self._count(model, 1, dropped_targets, dropped_endpoints)
        for name, old in before.items():
            if name not in table.models:
                self._count(old, -1, dropped_targets, dropped_endpoints)
        for target in dropped_targets - self._live_targets.keys():
            # requests still in flight keep their (now unexported) child until they end
            if self._children.pop((self.in_flight, target), None) is not None:
                self.in_flight.remove(*target)
        for name in dropped_endpoints - self._live_endpoints.keys():
            if self._endpoints.pop(name, None) is not None:
                labels = name.split("/", 1) if "/" in name else ["", name]
                self.endpoint_demand.remove(*labels)
                self.endpoint_requests.remove(*labels)
        self._fresh_targets, self._fresh_endpoints = [], []

    def _count(self, model: routes.Model, step: int, targets: set[Any], endpoints: set[str]) -> None:
        """Count ``model``'s endpoints and targets in (1) or out (-1) of the live ones; note those
        counted out (the caller drops those no longer live) and give those counted in a series."""
        for e in model.endpoints:
            live = self._live_endpoints.get(e.name, 0) + step
            if live:
                self._live_endpoints[e.name] = live
            else:
                del self._live_endpoints[e.name]
            if step > 0:
                self.endpoint(e.name)
            else:
                endpoints.add(e.name)
            for t in e.targets:
                pair = (e.name, t.key)
                live = self._live_targets.get(pair, 0) + step
                if live:
                    self._live_targets[pair] = live
                else:
                    del self._live_targets[pair]
                    targets.add(pair)

    def watch_routes(self, table: Callable[[], routes.RouteTable]) -> None:
        """Export what the current route table says about unreadable upstream key Secrets, and
        follow it (:meth:`follow`) on every scrape."""
        self._source = table
        self.registry.register(_UnreadableKeys(table))

    def watch_spills(self, spills: Callable[[], Mapping[str, int]]) -> None:
        """Export the balancer's PrefixHash spill counts (``prefix_spills_total``)."""
        self.registry.register(_Spills(spills))

    def watch_pods(self, known: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        """Export each pod's reported queue, (endpoint, target, value) from ``known()``."""
        self._pods = known

    def exposition(self) -> bytes:
        if self._source is not None:
            self.follow(self._source())
        return prometheus_client.generate_latest(self.registry)

    def count_usage(self, model: str, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        for kind, field in _TOKEN_KINDS:
            value = usage.get(field)
            if isinstance(value, int) and value > 0:
                self.child(self.tokens, model, kind).inc(value)


_TOKEN_KINDS = (("prompt", "prompt_tokens"), ("completion", "completion_tokens"))


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


class _Spills(prometheus_client.registry.Collector):
    def __init__(self, spills: Callable[[], Mapping[str, int]]) -> None:
        self._spills = spills

    @staticmethod
    def _family() -> prometheus_client.core.CounterMetricFamily:
        return prometheus_client.core.CounterMetricFamily(
            "modelyard_gateway_prefix_spills",
            "PrefixHash picks that passed over the key's pod at its load bound",
            labels=["endpoint"],
        )

    def describe(self) -> Iterator[prometheus_client.core.CounterMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[prometheus_client.core.CounterMetricFamily]:
        family = self._family()
        for endpoint, count in sorted(self._spills().items()):
            family.add_metric([endpoint], float(count))
        yield family


class _PodQueues(prometheus_client.registry.Collector):
    def __init__(self, known: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        self._known = known

    @staticmethod
    def _family() -> prometheus_client.core.GaugeMetricFamily:
        return prometheus_client.core.GaugeMetricFamily(
            "modelyard_gateway_pod_queue",
            "Requests running plus waiting, as the pod last reported them on its /metrics",
            labels=["endpoint", "target"],
        )

    def describe(self) -> Iterator[prometheus_client.core.GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[prometheus_client.core.GaugeMetricFamily]:
        family = self._family()
        for endpoint, target, value in self._known():
            family.add_metric([endpoint, target], value)
        yield family
