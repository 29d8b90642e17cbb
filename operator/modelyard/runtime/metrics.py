"""Prometheus metrics of one server, in its own registry (never the process-global default)."""

from __future__ import annotations

import prometheus_client

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = prometheus_client.Counter(
            "modelyard_runtime_requests", "Requests answered", ["model", "endpoint", "status"], registry=r
        )
        self.latency = prometheus_client.Histogram(
            "modelyard_runtime_request_seconds",
            "Time to the last byte",
            ["model", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = prometheus_client.Histogram(
            "modelyard_runtime_time_to_first_token_seconds",
            "Streaming: time to the first content chunk",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = prometheus_client.Counter(
            "modelyard_runtime_prompt_tokens", "Prompt tokens processed", ["model"], registry=r
        )
        self.generated_tokens = prometheus_client.Counter(
            "modelyard_runtime_generated_tokens",
            "Tokens generated (cancelled generations included)",
            ["model"],
            registry=r,
        )
        self.cancelled = prometheus_client.Counter(
            "modelyard_runtime_generations_cancelled",
            "Generations stopped because the client went away",
            ["model"],
            registry=r,
        )
        self.rejected = prometheus_client.Counter(
            "modelyard_runtime_rejected", "Requests refused because the queue was full", ["model"], registry=r
        )
        self.queue_depth = prometheus_client.Gauge(
            "modelyard_runtime_queue_depth", "Requests running or waiting", ["model"], registry=r
        )
        self.batch_size = prometheus_client.Histogram(
            "modelyard_runtime_batch_size",
            "Items per coalesced model call",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.ready = prometheus_client.Gauge(
            "modelyard_runtime_ready", "1 once warm-up succeeded", registry=r
        )

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (tests and the benchmark read metrics through this)."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else float(found)
