"""Both strategies weigh a pod by this gateway's requests in flight to it now plus the others'
the pod reported (in memory).

The pod's figure is ``vllm:num_requests_running + vllm:num_requests_waiting`` from its
``/metrics`` (:mod:`modelyard.gateway.podload`); it counted this gateway's own requests as they
were at the scrape, so those are taken out (the larger of the own count at the scrape's send and
at its answer) and the own count of now put in: a request that has finished since is not
counted twice. A figure older than three intervals, or a pod never heard from, leaves the
gateway's own count alone. Upstream targets are never scraped.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest

from modelyard.gateway import balancer, discovery, podload, routes

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
    chooser = balancer.WeightedLeastBusy(clock=clock, others=pods.others)
    pods.record("a", 5.0)
    pods.record("b", 0.0)
    assert _picks(chooser, _model("a", "b"), 20) == {"b": 20}


def test_requests_sent_since_the_scrape_count_though_the_pod_has_not_seen_them() -> None:
    clock = Clock()
    pods = podload.PodLoad(1.0, clock=clock)
    chooser = balancer.WeightedLeastBusy(clock=clock, others=pods.others)
    model = _model("a", "b")
    b = model.endpoints[0].targets[1]
    pods.record("a", 2.0)
    pods.record("b", 0.0)  # the pod has not seen our requests yet
    for _ in range(3):
        chooser.started(b)
    assert (chooser.load("a"), chooser.load("b")) == (2.0, 3.0)
    assert _picks(chooser, model, 5) == {"a": 5}


def test_a_scrape_that_caught_our_finished_request_does_not_spill_the_next_one_of_its_key() -> None:
    """One request at a time (a tenant's users in turn): the last scrape ran while the previous
    request was in flight, so the pod said 1. That request has finished and nothing runs there:
    the pod is idle, and the key's next request stays on it (and on its prefix cache) rather
    than spilling past PrefixHash's load bound, ``ceil(1.25 * (1 + 1) / 3) = 1``."""
    clock = Clock()
    pods = podload.PodLoad(1.0, clock=clock)
    chooser = balancer.WeightedLeastBusy(clock=clock, others=pods.others)
    targets = tuple(discovery.pod_target("ns/chat", f"http://10.0.1.{i}:8000") for i in range(3))
    routing = routes.Routing("PrefixHash", 512, 1.25)
    model = routes.build_table(
        [routes.EndpointInfo("ns/chat", "chat", 100, targets=targets, routing=routing)]
    )
    chat = model.get("chat")
    assert chat is not None
    key = "p:system prompt of tenant 0 " * 8
    first = chooser.choose(chat, (), key)
    assert first is not None and first[1] is not None
    pod = first[1]
    chooser.started(pod)
    for target in targets:  # a scrape round while the request runs
        pods.record(target.key, 1.0 if target is pod else 0.0, own=chooser.in_flight(target.key))
    chooser.finished(pod, ok=True)
    assert pods.reported(pod.key) == 1.0 and chooser.load(pod.key) == 0.0
    assert chooser.choose(chat, (), key) == first
    assert chooser.spills() == {}


def test_other_clients_requests_still_count_on_top_of_ours() -> None:
    clock = Clock()
    pods = podload.PodLoad(1.0, clock=clock)
    chooser = balancer.WeightedLeastBusy(clock=clock, others=pods.others)
    target = routes.Target("a", "http://a/v1")
    chooser.started(target)
    pods.record("a", 3.0, own=chooser.in_flight("a"))  # ours 1, others' 2
    chooser.finished(target, ok=True)
    assert chooser.load("a") == 2.0
    chooser.started(target)
    chooser.started(target)
    assert chooser.load("a") == 4.0
    pods.record("b", 0.0, own=2)  # ours had not reached the pod yet: the others' are none, not -2
    assert pods.others("b") == 0.0 and chooser.load("b") == 0.0


def _scrape_while(during: Callable[[balancer.WeightedLeastBusy, routes.Target], None]) -> tuple[float, float]:
    """One request of ours in flight when a scrape is sent; ``during`` runs in the pod's
    handler, after the pod counted (running 1, ours) and before its answer. The pod's figure
    and the balancer's load of the pod afterwards."""
    from aiohttp import web

    async def scenario() -> tuple[float, float]:
        pods = podload.PodLoad(1.0)
        chooser = balancer.WeightedLeastBusy(others=pods.others)
        answered = asyncio.Event()

        async def page(_: web.Request) -> web.Response:
            if not answered.is_set():
                during(chooser, target)
                answered.set()
            return web.Response(text='vllm:num_requests_running{model_name="chat"} 1.0\n')

        app = web.Application()
        app.router.add_get("/metrics", page)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        target = routes.Target("ns/chat@pod", f"http://127.0.0.1:{runner.addresses[0][1]}/v1")
        table = routes.RouteTable(
            {"chat": routes.Model("chat", (routes.Endpoint("ns/chat", "chat", 1, (target,)),))}
        )
        chooser.started(target)
        await pods.start(lambda: table, chooser.in_flight)  # its loop scrapes at once
        try:
            await asyncio.wait_for(answered.wait(), 10)
            while pods.reported(target.key) is None:
                await asyncio.sleep(0.01)
        finally:
            await pods.stop()
            await runner.cleanup()
        reported = pods.reported(target.key)
        assert reported is not None
        return reported, chooser.load(target.key)

    return asyncio.run(scenario())


def test_a_request_that_finished_while_the_scrape_was_on_its_way_is_not_counted_twice() -> None:
    reported, load = _scrape_while(lambda chooser, target: chooser.finished(target, ok=True))
    assert (reported, load) == (1.0, 0.0)


def test_a_request_sent_while_the_scrape_was_on_its_way_is_taken_for_ours() -> None:
    """Ours at the send, 1; at the answer, 2: the pod's 1 is taken for ours (the larger count),
    so another client's is counted short rather than ours twice."""
    reported, load = _scrape_while(lambda chooser, target: chooser.started(target))
    assert (reported, load) == (1.0, 2.0)


def test_a_stale_or_missing_figure_leaves_the_own_count_alone() -> None:
    clock = Clock()
    pods = podload.PodLoad(1.0, clock=clock)
    chooser = balancer.WeightedLeastBusy(clock=clock, others=pods.others)
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
    asyncio.run(pods.scrape(routes.RouteTable(), lambda _key: 0))
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
        await pods.start(lambda: table, lambda _key: 0)  # its session, and its loop (the same pods)
        await pods.scrape(table, lambda _key: 0)
        await pods.stop()
        for runner in runners:
            await runner.cleanup()
        return {t.key: pods.reported(t.key) for e in endpoints for t in e.targets}, errors

    reported, errors = asyncio.run(scenario())
    assert reported == {"ns/page@pod": 7.0, "ns/hang@pod": None, "ns/other@pod": None}
    assert set(errors) == {"ns/hang", "ns/other"}  # once per round (the loop ran one too)
