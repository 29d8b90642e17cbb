"""A request for an endpoint at zero replicas waits for its first ready pod, or ends with a 503
that says why and when to retry; while it waits it counts in the endpoint's demand."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import requests

from kit import metric
from modelyard.api import model_endpoint
from modelyard.gateway import discovery, readiness, routes

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _waiting(name: str = "ns/m-a", served: str = "m", **kw: Any) -> routes.EndpointInfo:
    return routes.EndpointInfo(name, served, ready=False, hold=True, **kw)


def _set(harness: Any, source: discovery.StaticDiscovery, table: routes.RouteTable) -> None:
    """Swap the table on the gateway's loop, as discovery does."""

    async def swap() -> None:
        source.set(table)

    harness.loop.run(swap())


def _metrics(url: str) -> str:
    return requests.get(f"{url}/metrics", timeout=10).text


def test_held_requests_and_streams_are_sent_when_a_pod_is_ready(harness: Any, wait: Any) -> None:
    fake = harness.fake("a")
    source = discovery.StaticDiscovery(routes.build_table([_waiting()]))
    url, _ = harness.gateway(source)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        plain = [
            pool.submit(requests.post, f"{url}/v1/chat/completions", json=CHAT, timeout=60) for _ in range(3)
        ]
        stream = pool.submit(
            requests.post, f"{url}/v1/chat/completions", json={**CHAT, "stream": True}, timeout=60
        )
        wait(lambda: metric(_metrics(url), "modelyard_gateway_held_requests", model="m") == 4, 20, "4 held")
        text = _metrics(url)
        assert metric(text, "modelyard_gateway_endpoint_demand", namespace="ns", endpoint="m-a") == 4
        assert not any(f.done() for f in [*plain, stream])

        ready = routes.EndpointInfo(
            "ns/m-a", "m", hold=True, targets=(discovery.pod_target("ns/m-a", fake.url),)
        )
        _set(harness, source, routes.build_table([ready]))
        answers = [f.result() for f in plain]
        streamed = stream.result()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.json()["choices"][0]["message"]["content"] == "hello from a" for a in answers)
    assert streamed.status_code == 200 and "a-0" in streamed.text and "[DONE]" in streamed.text
    assert len(fake.requests) == 4  # none lost, none sent twice
    text = _metrics(url)
    assert metric(text, "modelyard_gateway_held_requests", model="m") == 0
    assert metric(text, "modelyard_gateway_held_total", model="m", outcome="sent") == 4
    assert metric(text, "modelyard_gateway_endpoint_demand", namespace="ns", endpoint="m-a") == 0
    assert metric(text, "modelyard_gateway_endpoint_requests_total", namespace="ns", endpoint="m-a") == 4


def test_a_full_hold_queue_answers_503_at_once(harness: Any, wait: Any) -> None:
    source = discovery.StaticDiscovery(routes.build_table([_waiting()]))
    url, _ = harness.gateway(source, hold_queue=1, hold_timeout=60)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(requests.post, f"{url}/v1/chat/completions", json=CHAT, timeout=90)
        wait(lambda: metric(_metrics(url), "modelyard_gateway_held_requests", model="m") == 1, 20, "1 held")
        refused = requests.post(f"{url}/v1/chat/completions", json=CHAT, timeout=30)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"].isdigit()
        error = refused.json()["error"]
        assert error["code"] == "model_unavailable" and "--hold-queue" in error["message"]
        assert not first.done()
        _set(harness, source, routes.build_table([routes.EndpointInfo("ns/m-a", "m", weight=0)]))
        assert first.result().status_code == 503  # the endpoint left the routes: never a hang
    outcomes = _metrics(url)
    assert metric(outcomes, "modelyard_gateway_held_total", model="m", outcome="queue_full") == 1
    assert metric(outcomes, "modelyard_gateway_held_total", model="m", outcome="unavailable") == 1


def test_a_held_request_times_out_with_503(harness: Any) -> None:
    source = discovery.StaticDiscovery(routes.build_table([_waiting()]))
    url, _ = harness.gateway(source, hold_timeout=0.5)
    for body in (CHAT, {**CHAT, "stream": True}):
        answer = requests.post(f"{url}/v1/chat/completions", json=body, timeout=30)
        assert answer.status_code == 503
        assert answer.headers["Retry-After"].isdigit()
        assert "--hold-timeout" in answer.json()["error"]["message"]
    assert metric(_metrics(url), "modelyard_gateway_held_total", model="m", outcome="timeout") == 2


def test_a_held_request_ends_with_the_reason_the_endpoint_cannot_come_up(harness: Any, wait: Any) -> None:
    source = discovery.StaticDiscovery(routes.build_table([_waiting()]))
    url, _ = harness.gateway(source)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(requests.post, f"{url}/v1/chat/completions", json=CHAT, timeout=60)
        wait(lambda: metric(_metrics(url), "modelyard_gateway_held_requests", model="m") == 1, 20, "1 held")
        why = "Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu"
        _set(harness, source, routes.build_table([_waiting(down=why)]))
        answer = held.result()
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert why in answer.json()["error"]["message"]
    # a new request is not held for an endpoint that cannot come up: 503 at once, same reason
    again = requests.post(f"{url}/v1/chat/completions", json=CHAT, timeout=30)
    assert again.status_code == 503 and why in again.json()["error"]["message"]
    assert again.json()["error"]["code"] == "model_unavailable"


def test_a_weighted_split_sends_the_share_of_an_endpoint_at_zero_to_it(harness: Any, wait: Any) -> None:
    a = harness.fake("a")
    source = discovery.StaticDiscovery(
        routes.build_table(
            [
                routes.EndpointInfo("ns/m-a", "m", targets=(discovery.pod_target("ns/m-a", a.url),)),
                _waiting("ns/m-b"),
            ]
        )
    )
    url, _ = harness.gateway(source)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(requests.post, f"{url}/v1/chat/completions", json=CHAT, timeout=60) for _ in range(4)
        ]
        wait(lambda: len(a.requests) == 2, 20, "a's half answered")
        wait(
            lambda: metric(_metrics(url), "modelyard_gateway_held_requests", model="m") == 2,
            20,
            "b's half held",
        )
        b = harness.fake("b")
        woken = routes.EndpointInfo(
            "ns/m-b", "m", hold=True, targets=(discovery.pod_target("ns/m-b", b.url),)
        )
        a_info = routes.EndpointInfo("ns/m-a", "m", targets=(discovery.pod_target("ns/m-a", a.url),))
        _set(harness, source, routes.build_table([a_info, woken]))
        assert all(f.result().status_code == 200 for f in futures)
    assert (len(a.requests), len(b.requests)) == (2, 2)


def test_every_routed_endpoint_has_a_demand_series(harness: Any, make_pods: Any) -> None:
    a = harness.fake("a")
    source = discovery.StaticDiscovery(routes.build_table([make_pods("ns/m-a", "m", a), _waiting("ns/m-b")]))
    url, _ = harness.gateway(source)
    text = _metrics(url)
    for name in ("m-a", "m-b"):
        assert f'modelyard_gateway_endpoint_demand{{endpoint="{name}",namespace="ns"}} 0.0' in text


def test_draining_pods_get_no_new_request() -> None:
    """EndpointSlice conditions: only ready, not terminating, addresses are routed."""
    ok = readiness.routable_address
    assert ok({"conditions": {"ready": True, "serving": True, "terminating": False}})
    assert not ok({"conditions": {"ready": False, "serving": True, "terminating": True}})  # draining
    assert not ok({"conditions": {"ready": True, "serving": True, "terminating": True}})
    assert not ok({"conditions": {"ready": True, "serving": False}})
    assert not ok({"conditions": {"ready": False}})
    assert not ok({})


def test_which_endpoints_hold_requests() -> None:
    def state(spec: dict[str, Any], replicas: int = 1, **status: Any) -> tuple[bool, str | None]:
        parsed = model_endpoint.ModelEndpointStatus.model_validate(status)
        return readiness.hold_state({"spec": spec}, replicas, parsed)

    autoscaled = {"autoscaling": {"minReplicas": 0, "maxReplicas": 2}}
    assert state(autoscaled, 0, phase="Ready") == (True, None)
    assert state({}, 0, phase="Pending", reason="ScaledToZero") == (True, None)
    assert state({}, 1, phase="Progressing") == (True, None)
    assert state({}, 1) == (True, None)  # new: the operator has not written its start yet
    assert state({}, 0, phase="Pending") == (False, None)  # scaled to 0 by hand, not autoscaled
    assert state({}, 1, phase="Ready") == (False, None)
    hold, down = state(autoscaled, 1, phase="Pending", reason="Unschedulable", message="0/1 nodes")
    assert hold and down == "Unschedulable: 0/1 nodes"
    assert (
        state({}, 1, phase="Failed", reason="CrashLoopBackOff", message="exit 1")[1]
        == "CrashLoopBackOff: exit 1"
    )
