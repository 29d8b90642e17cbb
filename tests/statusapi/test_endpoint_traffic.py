"""What the status API shows per endpoint from the gateways' metrics and the autoscaling status,
and the catalog's size and GPU memory of an entry only the operator could size."""

from __future__ import annotations

from typing import Any

from modelyard import statusapi
from modelyard.gateway import metrics as gateway_metrics
from modelyard.registry import estimates
from modelyard.statusapi import present, traffic
from statusapi.conftest import Api, endpoint, local_entry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rates_are_summed_over_gateways_and_taken_over_the_window() -> None:
    gateways = [gateway_metrics.Metrics(), gateway_metrics.Metrics()]
    clock, changes = Clock(), []
    live = traffic.Traffic(changed=lambda: changes.append(1), clock=clock, window=30)

    def scrape() -> None:
        live.record(g.exposition().decode() for g in gateways)

    for g in gateways:
        g.endpoint("prod/a")  # both gateways route to prod/a
    scrape()
    assert live.of("prod/a", "m") == traffic.EndpointTraffic(demand=0.0)  # no rate from one scrape
    for g, (held, sent) in zip(gateways, ((2, 10), (3, 30)), strict=True):
        demand, requests = g.endpoint("prod/a")
        demand.inc(held)
        requests.inc(sent)
        g.child(g.duration, "m", "prod/a", "200").observe(0.5)
        g.count_usage("m", {"prompt_tokens": 50, "completion_tokens": 150})
    clock.now += 10
    scrape()
    seen = live.of("prod/a", "m")
    assert seen.demand == 5
    assert seen.requests_per_s == 40 / 10
    assert seen.latency_s == 0.5
    assert seen.tokens_per_s == 400 / 10
    assert changes  # the dashboard is told
    # nothing new for 40 s: the window moves past the requests
    clock.now += 40
    scrape()
    clock.now += 1
    scrape()
    assert live.of("prod/a", "m").requests_per_s == 0


def test_health_colours_a_ready_reason_as_ok() -> None:
    assert present.health("Ready", "Available") == "ok"
    assert present.health("Pending", "ScaledToZero") == "idle"
    assert present.health("Progressing", "ScalingUp") == "warn"
    assert present.health("Pending", "Unschedulable") == "error"
    assert present.health("Failed", "CrashLoopBackOff") == "error"


def test_endpoint_fields_come_from_the_autoscaling_status(serve: Any) -> None:
    obj = endpoint("auto", "qwen3-4b-instruct-2507", phase="Ready", replicas=1,
                   autoscaling={"desiredReplicas": 3, "currentReplicas": 2, "demand": 17.0,
                                "lastScaleReason": "demand 17 > 8 x 2 ready: 2 -> 3"})  # fmt: skip
    obj["spec"]["autoscaling"] = {"minReplicas": 0, "maxReplicas": 4}
    api: Api = serve(statusapi.Cache([obj]))
    row = api.get("/api/v1/endpoints")[1]["data"][0]
    assert (row["desired_replicas"], row["current_replicas"]) == (3, 2)
    assert (row["min_replicas"], row["max_replicas"]) == (0, 4)
    assert row["demand"] == 17.0 and row["last_scale_reason"].startswith("demand 17")
    assert row["requests_per_s"] is None and row["health"] == "ok"


def test_size_and_gpu_memory_of_a_local_entry_come_from_its_status(serve: Any) -> None:
    api: Api = serve(statusapi.Cache([local_entry("pvc://models/tiny")]))
    model = api.get("/api/v1/registry/models")[1]["data"][0]
    assert model["parameters"] == estimates.human_count(1_100_048_384)
    assert (model["min_vram_gb"], model["recommended_vram_gb"]) == (3.0, 4.0)
