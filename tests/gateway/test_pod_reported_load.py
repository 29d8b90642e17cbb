"""Least-busy weighs a pod by ``max(own in flight, what the pod reports)`` (pure, in memory).

The pod's figure is ``vllm:num_requests_running + vllm:num_requests_waiting`` from its
``/metrics`` (:mod:`modelyard.gateway.podload`); a figure older than three intervals, or a pod
never heard from, leaves the gateway's own count alone. Upstream targets are never scraped.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from modelyard.gateway import balancer, podload, routes

PAGE = """# HELP vllm:num_requests_running Sequences in the running batch
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="chat"} 2.0
vllm:num_requests_running{model_name="chat-lora"} 1.0
# HELP vllm:num_requests_waiting Requests accepted, not yet running
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="chat"} 4.0
vllm:num_requests_waiting{model_name="chat-lora"} 0.0
# HELP vllm:kv_cache_usage_perc Share of the KV budget
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="chat"} 0.5
# TYPE modelyard_runtime_request_seconds histogram
modelyard_runtime_request_seconds_bucket{endpoint="chat",le="0.005",model="chat"} 3.0
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _model(*keys: str) -> routes.Model:
    targets = tuple(routes.Target(k, f"http://{k}/v1") for k in keys)
    return routes.Model("chat", (routes.Endpoint("ns/chat", "chat", 100, targets),))


def _picks(chooser: balancer.WeightedLeastBusy, model: routes.Model, n: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(n):
        picked = chooser.choose(model, ())
        assert picked is not None and picked[1] is not None
        seen[picked[1].key] += 1
    return seen


def test_the_queue_length_sums_running_and_waiting_over_every_model() -> None:
    assert podload.queue_length(PAGE) == 7.0


def test_a_page_without_the_protocol_or_with_nonsense_is_an_error() -> None:
    with pytest.raises(ValueError, match="vllm:num_requests_running"):
        podload.queue_length('modelyard_runtime_queue_depth{model="chat"} 3.0\n')
    for value in ("NaN", "+Inf", "-1"):
        with pytest.raises(ValueError, match="vllm:num_requests_waiting"):
            podload.queue_length(f'vllm:num_requests_waiting{{model_name="chat"}} {value}\n')


def test_a_pod_that_reports_a_queue_gets_no_new_requests_while_another_is_idle() -> None:
    clock = Clock()
    pods = podload.PodLoad(1.0, clock=clock)
    chooser = balancer.WeightedLeastBusy(clock=clock, reported=pods.reported)
    pods.record("a", 5.0)
    pods.record("b", 0.0)
    assert _picks(chooser, _model("a", "b"), 20) == {"b": 20}


def test_the_own_count_wins_when_it_is_larger_than_the_pods_figure() -> None:
    clock = Clock()
    pods = podload.PodLoad(1.0, clock=clock)
    chooser = balancer.WeightedLeastBusy(clock=clock, reported=pods.reported)
    model = _model("a", "b")
    b = model.endpoints[0].targets[1]
    pods.record("a", 2.0)
    pods.record("b", 0.0)  # the pod has not seen our requests yet
    for _ in range(3):
        chooser.started(b)
    assert (chooser.load("a"), chooser.load("b")) == (2.0, 3.0)
    assert _picks(chooser, model, 5) == {"a": 5}


def test_a_stale_or_missing_figure_leaves_the_own_count_alone() -> None:
    clock = Clock()
    pods = podload.PodLoad(1.0, clock=clock)
    chooser = balancer.WeightedLeastBusy(clock=clock, reported=pods.reported)
    pods.record("a", 9.0)
    assert chooser.load("a") == 9.0 and chooser.load("b") == 0.0
    clock.now += podload.STALE_INTERVALS * 1.0 + 0.1  # three 1 s intervals
    assert pods.reported("a") is None and pods.known() == []
    assert chooser.load("a") == 0.0
    assert sorted(_picks(chooser, _model("a", "b"), 10).values()) == [5, 5]  # back to round-robin


def test_without_pod_figures_the_load_is_the_own_count() -> None:
    chooser = balancer.WeightedLeastBusy()
    target = routes.Target("a", "http://a/v1")
    chooser.started(target)
    assert chooser.load("a") == 1.0


def test_only_pod_targets_are_scraped() -> None:
    pod = routes.Target("ns/chat@10.0.0.5:8000", "http://10.0.0.5:8000/v1")
    remote = routes.Target("ns/remote@upstream", "https://api.example.com/v1")
    table = routes.RouteTable(
        {
            "chat": routes.Model(
                "chat",
                (
                    routes.Endpoint("ns/chat", "chat", 50, (pod,)),
                    routes.Endpoint("ns/remote", "chat", 50, (remote,), upstream=routes.Upstream()),
                ),
            )
        }
    )
    assert podload.pod_targets(table) == {pod.key: ("ns/chat", "http://10.0.0.5:8000/metrics")}


def test_pods_gone_from_the_routes_are_forgotten() -> None:
    pods = podload.PodLoad(1.0)
    pods.record("gone", 3.0)
    asyncio.run(pods.scrape(routes.RouteTable()))
    assert pods.reported("gone") is None


def test_a_pod_that_hangs_or_speaks_another_protocol_is_unknown_and_counted() -> None:
    from aiohttp import web

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE)

    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def other(_: web.Request) -> web.Response:
        return web.Response(text="# nothing of the protocol\nup 1\n")

    async def scenario() -> tuple[dict[str, float | None], list[str]]:
        runners, urls = [], []
        for handler in (page, hang, other):
            app = web.Application()
            app.router.add_get("/metrics", handler)
            runner = web.AppRunner(app, shutdown_timeout=0.1)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        endpoints = tuple(
            routes.Endpoint(f"ns/{name}", "chat", 1, (routes.Target(f"ns/{name}@pod", f"{url}/v1"),))
            for name, url in zip(("page", "hang", "other"), urls, strict=True)
        )
        table = routes.RouteTable({"chat": routes.Model("chat", endpoints)})
        errors: list[str] = []
        pods = podload.PodLoad(0.2)
        pods.on_error(errors.append)
        await pods.start(lambda: table)  # its session, and its loop (scraping the same pods)
        await pods.scrape(table)
        await pods.stop()
        for runner in runners:
            await runner.cleanup()
        return {t.key: pods.reported(t.key) for e in endpoints for t in e.targets}, errors

    reported, errors = asyncio.run(scenario())
    assert reported == {"ns/page@pod": 7.0, "ns/hang@pod": None, "ns/other@pod": None}
    assert set(errors) == {"ns/hang", "ns/other"}  # once per round (the loop ran one too)
