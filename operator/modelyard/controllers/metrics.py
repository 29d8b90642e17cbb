"""The operator's Prometheus metrics, in a registry of its own (no global default)."""

from __future__ import annotations

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

    @classmethod
    def create(cls) -> Metrics:
        registry = prom.CollectorRegistry()
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
        )

    def render(self) -> bytes:
        return prom.generate_latest(self.registry)
