"""The operator's Prometheus metrics, in a registry of its own (no global default)."""

from __future__ import annotations

import contextlib
import dataclasses

import prometheus_client as prom


@dataclasses.dataclass
class Metrics:
    registry: prom.CollectorRegistry
    reconciles: prom.Counter
    errors: prom.Counter
    duration: prom.Histogram
    managed: prom.Gauge
    time_to_ready: prom.Histogram
    desired_replicas: prom.Gauge
    current_replicas: prom.Gauge
    demand: prom.Gauge
    scale_events: prom.Counter
    scrape_errors: prom.Counter
    gateways_scraped: prom.Gauge

    @classmethod
    def create(cls) -> Metrics:
        registry = prom.CollectorRegistry()

        def per_endpoint(name: str, documentation: str) -> prom.Gauge:
            """An autoscaler gauge, one series per ModelEndpoint."""
            return prom.Gauge(
                f"modelyard_operator_autoscale_{name}",
                documentation,
                ["namespace", "endpoint"],
                registry=registry,
            )

        return cls(
            registry=registry,
            reconciles=prom.Counter(
                "modelyard_reconciles", "Reconciles by kind and result", ["kind", "result"], registry=registry
            ),
            errors=prom.Counter(
                "modelyard_reconcile_errors", "Reconcile errors by kind", ["kind"], registry=registry
            ),
            duration=prom.Histogram(
                "modelyard_reconcile_duration_seconds",
                "Reconcile duration by kind",
                ["kind"],
                registry=registry,
            ),
            managed=prom.Gauge(
                "modelyard_objects_managed", "Objects managed by kind", ["kind"], registry=registry
            ),
            time_to_ready=prom.Histogram(
                "modelyard_endpoint_time_to_ready_seconds",
                "Time from ModelEndpoint creation to its first Ready",
                buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
                registry=registry,
            ),
            desired_replicas=per_endpoint(
                "desired_replicas", "Replicas the autoscaler wants per ModelEndpoint"
            ),
            current_replicas=per_endpoint("current_replicas", "Ready replicas per autoscaled ModelEndpoint"),
            demand=per_endpoint(
                "demand", "Requests in flight + queued + held per ModelEndpoint, summed over the gateways"
            ),
            scale_events=prom.Counter(
                "modelyard_operator_autoscale_scale_events",
                "Changes of spec.replicas by the autoscaler, by direction (up, down)",
                ["namespace", "endpoint", "direction"],
                registry=registry,
            ),
            scrape_errors=prom.Counter(
                "modelyard_operator_gateway_scrape_errors",
                "Gateway /metrics scrapes (or EndpointSlice listings) that failed",
                registry=registry,
            ),
            gateways_scraped=prom.Gauge(
                "modelyard_operator_gateways_scraped",
                "Gateways whose demand the last autoscaler round read",
                registry=registry,
            ),
        )

    def forget_endpoint(self, namespace: str, name: str) -> None:
        """Drop an endpoint's autoscaler series (it was deleted or lost spec.autoscaling)."""
        for gauge in (self.desired_replicas, self.current_replicas, self.demand):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)
        for direction in ("up", "down"):
            with contextlib.suppress(KeyError):
                self.scale_events.remove(namespace, name, direction)

    def render(self) -> bytes:
        return prom.generate_latest(self.registry)
