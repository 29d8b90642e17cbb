"""Prometheus metrics of one server, in its own registry (never the process-global default).

Queue and KV-cache signals are read when ``/metrics`` is scraped (:class:`_QueueCollector`),
under modelyard's names and under the names the Gateway API Inference Extension's model-server
protocol reads from vLLM (``vllm:num_requests_running``, ``vllm:num_requests_waiting``,
``vllm:kv_cache_usage_perc``), so routers and autoscalers read either engine alike. Live
adapters export vLLM's ``vllm:lora_requests_info`` the same way (:class:`_LoraCollector`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import prometheus_client
import prometheus_client.core
import prometheus_client.registry

from modelyard.runtime import protocols

QueueSource = Callable[[], Iterable[tuple[str, protocols.EngineStats]]]
"""(model name, its queue and cache figures) for every served model, read at scrape time."""


class AdapterSource(Protocol):
    """What the live adapters' registry shows the metrics (:mod:`modelyard.runtime.liveadapters`)."""

    max_adapters: int

    def count(self) -> int: ...

    def activity(self) -> tuple[list[str], list[str]]: ...


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
        self.adapters_loaded = prometheus_client.Gauge(
            "modelyard_runtime_adapters_loaded", "Live LoRA adapters loaded", registry=r
        )
        self.adapter_loads = prometheus_client.Counter(
            "modelyard_runtime_adapter_loads",
            "Adapter loads by outcome (loaded, failed)",
            ["outcome"],
            registry=r,
        )

    def watch_queues(self, source: QueueSource) -> None:
        self.registry.register(_QueueCollector(source))

    def watch_adapters(self, source: AdapterSource) -> None:
        self.adapters_loaded.set_function(source.count)
        self.registry.register(_LoraCollector(source))

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (tests and the benchmark read metrics through this)."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else float(found)


def _usage(s: protocols.EngineStats) -> float:
    return s.kv_cache_reserved_bytes / s.kv_cache_budget_bytes if s.kv_cache_budget_bytes else 0.0


_Read = Callable[[protocols.EngineStats], float]

_GAUGES: tuple[tuple[str, str, _Read], ...] = (
    ("vllm:num_requests_running", "Sequences in the running batch", lambda s: s.running),
    ("vllm:num_requests_waiting", "Requests accepted, not yet running", lambda s: s.waiting),
    (
        "vllm:kv_cache_usage_perc",
        "Share of the KV budget the running batch has reserved (its worst case; 1 = full)",
        _usage,
    ),
    ("modelyard_runtime_requests_running", "Sequences in the running batch", lambda s: s.running),
    ("modelyard_runtime_requests_waiting", "Requests accepted, not yet running", lambda s: s.waiting),
    (
        "modelyard_runtime_kv_cache_bytes",
        "Bytes of the running batch's KV tensors",
        lambda s: s.kv_cache_bytes,
    ),
    (
        "modelyard_runtime_kv_cache_reserved_bytes",
        "The running batch's worst-case KV size (kept within the budget)",
        lambda s: s.kv_cache_reserved_bytes,
    ),
    ("modelyard_runtime_kv_cache_budget_bytes", "--kv-cache-bytes", lambda s: s.kv_cache_budget_bytes),
    (
        "modelyard_runtime_prefix_cache_bytes",
        "Bytes held by the prefix cache",
        lambda s: s.prefix_cache_bytes,
    ),
)
_COUNTERS: tuple[tuple[str, str, _Read], ...] = (
    (
        "modelyard_runtime_prefix_cache_hits",
        "Prompts that reused a cached prefix",
        lambda s: s.prefix_cache_hits,
    ),
    (
        "modelyard_runtime_prefix_cache_misses",
        "Prompts with no cached prefix",
        lambda s: s.prefix_cache_misses,
    ),
    (
        "vllm:prefix_cache_hits",
        "Prompt tokens served from the prefix cache",
        lambda s: s.prefix_cache_hit_tokens,
    ),
    (
        "vllm:prefix_cache_queries",
        "Prompt tokens looked up in the prefix cache",
        lambda s: s.prefix_cache_query_tokens,
    ),
)
"""(name, help, how to read it from a model's figures); a ``vllm:`` name is labelled
``model_name`` as vLLM labels it, the others ``model``."""


class _QueueCollector(prometheus_client.registry.Collector):
    def __init__(self, source: QueueSource) -> None:
        self.source = source

    def describe(self) -> list[prometheus_client.core.Metric]:
        return []

    def collect(self) -> Iterator[prometheus_client.core.Metric]:
        core = prometheus_client.core
        families: list[tuple[core.GaugeMetricFamily | core.CounterMetricFamily, _Read]] = []
        for kind, table in ((core.GaugeMetricFamily, _GAUGES), (core.CounterMetricFamily, _COUNTERS)):
            for name, text, read in table:
                label = "model_name" if name.startswith("vllm:") else "model"
                families.append((kind(name, text, labels=[label]), read))
        for model, stats in self.source():
            for metric, read in families:
                metric.add_metric([model], float(read(stats)))
        for metric, _ in families:
            yield metric


class _LoraCollector(prometheus_client.registry.Collector):
    """``vllm:lora_requests_info``, as vLLM exports it: one sample whose labels name the adapters
    with running and with waiting requests (comma-separated) and the bound; its value is the
    time of the scrape."""

    def __init__(self, source: AdapterSource) -> None:
        self.source = source

    def describe(self) -> list[prometheus_client.core.Metric]:
        return []

    def collect(self) -> Iterator[prometheus_client.core.Metric]:
        running, waiting = self.source.activity()
        family = prometheus_client.core.GaugeMetricFamily(
            "vllm:lora_requests_info",
            "Running stats on LoRA requests",
            labels=["max_lora", "running_lora_adapters", "waiting_lora_adapters"],
        )
        family.add_metric([str(self.source.max_adapters), ",".join(running), ",".join(waiting)], time.time())
        yield family
