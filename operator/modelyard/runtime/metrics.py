"""Prometheus metrics of one server, in its own registry (never the process-global default).

Queue and KV-cache signals are read when ``/metrics`` is scraped (:class:`_QueueCollector`),
under modelyard's names and under the names the Gateway API Inference Extension's model-server
protocol reads from vLLM (``vllm:num_requests_running``, ``vllm:num_requests_waiting``,
``vllm:kv_cache_usage_perc``), so routers and autoscalers read either engine alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import prometheus_client
import prometheus_client.core
import prometheus_client.registry

from modelyard.runtime import protocols

QueueSource = Callable[[], Iterable[tuple[str, protocols.EngineStats]]]
"""(model name, its queue and cache figures) for every served model, read at scrape time."""

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

    def watch_queues(self, source: QueueSource) -> None:
        self.registry.register(_QueueCollector(source))

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (tests and the benchmark read metrics through this)."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else float(found)


class _QueueCollector(prometheus_client.registry.Collector):
    def __init__(self, source: QueueSource) -> None:
        self.source = source

    def describe(self) -> list[prometheus_client.core.Metric]:
        return []

    def collect(self) -> Iterator[prometheus_client.core.Metric]:
        core = prometheus_client.core
        gauges = {
            "running": core.GaugeMetricFamily(
                "vllm:num_requests_running", "Sequences in the running batch", labels=["model_name"]
            ),
            "waiting": core.GaugeMetricFamily(
                "vllm:num_requests_waiting", "Requests accepted, not yet running", labels=["model_name"]
            ),
            "usage": core.GaugeMetricFamily(
                "vllm:kv_cache_usage_perc",
                "Share of the KV budget the running batch has reserved (its worst case; 1 = full)",
                labels=["model_name"],
            ),
            "own_running": core.GaugeMetricFamily(
                "modelyard_runtime_requests_running", "Sequences in the running batch", labels=["model"]
            ),
            "own_waiting": core.GaugeMetricFamily(
                "modelyard_runtime_requests_waiting", "Requests accepted, not yet running", labels=["model"]
            ),
            "kv": core.GaugeMetricFamily(
                "modelyard_runtime_kv_cache_bytes",
                "Bytes of the running batch's KV tensors",
                labels=["model"],
            ),
            "kv_reserved": core.GaugeMetricFamily(
                "modelyard_runtime_kv_cache_reserved_bytes",
                "The running batch's worst-case KV size (kept within the budget)",
                labels=["model"],
            ),
            "kv_budget": core.GaugeMetricFamily(
                "modelyard_runtime_kv_cache_budget_bytes", "--kv-cache-bytes", labels=["model"]
            ),
            "prefix_bytes": core.GaugeMetricFamily(
                "modelyard_runtime_prefix_cache_bytes", "Bytes held by the prefix cache", labels=["model"]
            ),
        }
        counters = {
            "hits": core.CounterMetricFamily(
                "modelyard_runtime_prefix_cache_hits", "Prompts that reused a cached prefix", labels=["model"]
            ),
            "misses": core.CounterMetricFamily(
                "modelyard_runtime_prefix_cache_misses", "Prompts with no cached prefix", labels=["model"]
            ),
            "hit_tokens": core.CounterMetricFamily(
                "vllm:prefix_cache_hits", "Prompt tokens served from the prefix cache", labels=["model_name"]
            ),
            "query_tokens": core.CounterMetricFamily(
                "vllm:prefix_cache_queries",
                "Prompt tokens looked up in the prefix cache",
                labels=["model_name"],
            ),
        }
        for name, s in self.source():
            usage = s.kv_cache_reserved_bytes / s.kv_cache_budget_bytes if s.kv_cache_budget_bytes else 0.0
            for key, value in (
                ("running", s.running),
                ("waiting", s.waiting),
                ("usage", usage),
                ("own_running", s.running),
                ("own_waiting", s.waiting),
                ("kv", s.kv_cache_bytes),
                ("kv_reserved", s.kv_cache_reserved_bytes),
                ("kv_budget", s.kv_cache_budget_bytes),
                ("prefix_bytes", s.prefix_cache_bytes),
            ):
                gauges[key].add_metric([name], float(value))
            for key, value in (
                ("hits", s.prefix_cache_hits),
                ("misses", s.prefix_cache_misses),
                ("hit_tokens", s.prefix_cache_hit_tokens),
                ("query_tokens", s.prefix_cache_query_tokens),
            ):
                counters[key].add_metric([name], float(value))
        yield from gauges.values()
        yield from counters.values()
