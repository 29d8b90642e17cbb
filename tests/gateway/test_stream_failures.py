"""Streams: keepalives while waiting, retries before the first event, a clean end on failure."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from kit import wait_for
from modelyard.gateway import app as gateway_app
from modelyard.gateway import discovery


def _raw_stream(url: str, model: str = "llama") -> bytes:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "x"}], "stream": True})
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return response.read()


def _events(raw: bytes) -> list[bytes]:
    return [e for e in raw.split(b"\n\n") if e]


@contextlib.contextmanager
def _streaming_socket(url: str) -> Iterator[socket.socket]:
    """A raw connection that has sent one streaming chat request; closing it is the client leaving."""
    address = urllib.parse.urlsplit(url)
    body = json.dumps({"model": "llama", "messages": [{"role": "user", "content": "x"}], "stream": True})
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body.encode())
        )
        yield sock


def test_keepalives_are_sent_while_waiting_for_the_first_event(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    slow = harness.fake("slow")
    slow.mode, slow.delay = "slow_first", 0.5
    url, _ = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", slow))), keepalive_interval=0.1
    )
    events = _events(_raw_stream(url))
    assert events[0] == b": keepalive"
    data = [e for e in events if e.startswith(b"data: {")]
    assert len(data) == 4 and events[-1] == b"data: [DONE]"


def test_stream_is_relayed_as_it_arrives(harness: Any, make_table: Any, make_pods: Any) -> None:
    slow = harness.fake("slow")
    slow.chunks, slow.hold = 3, threading.Event()  # the upstream sends one event, then waits
    url, _ = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", slow))))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
    stream = client.chat.completions.create(
        model="llama", messages=[{"role": "user", "content": "x"}], stream=True
    )
    # The first event reaches the client while the upstream still holds the rest: a gateway
    # that buffered the stream would keep it until the client's read timed out.
    first = next(iter(stream))
    assert first.choices[0].delta.content == "slow-0 "
    slow.hold.set()
    assert len(list(stream)) == 3


def test_stream_hanging_before_first_event_is_retried_behind_keepalives(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    hung, good = harness.fake("hung"), harness.fake("good")
    hung.mode = "hang"
    url, _ = harness.gateway(
        discovery.StaticDiscovery(
            make_table(
                make_pods("ns/a", "llama", hung, weight=1000), make_pods("ns/b", "llama", good, weight=1)
            )
        ),
        attempt_timeout=0.4,
        keepalive_interval=0.1,
    )
    raw = _raw_stream(url)
    assert raw.startswith(b": keepalive\n\n")
    assert b"good-0" in raw and raw.endswith(b"data: [DONE]\n\n")
    assert len(hung.requests) == 1


def test_failure_mid_stream_that_cannot_be_resumed_ends_with_an_error_event_and_done(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    dying = harness.fake("dying")
    dying.mode = "die"
    url, _ = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", dying))), retry_attempts=0
    )
    raw = _raw_stream(url)
    events = _events(raw)
    assert raw.endswith(b"\n\n")
    assert all(e.startswith(b"data: ") for e in events)
    for event in events[:-1]:
        json.loads(event[6:])  # every event is whole: no half-written line reached the client
    assert events[-1] == b"data: [DONE]"
    error = json.loads(events[-2][6:])["error"]
    assert error["code"] == "upstream_interrupted" and error["type"] == "server_error"
    assert len(dying.requests) == 1  # no attempt left to resume it

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=10)
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(
                model="llama", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )


def test_stream_error_status_before_commit_is_a_plain_error(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    bad = harness.fake("bad")
    bad.mode = "bad_request"
    url, _ = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", bad))))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=10)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="llama", messages=[{"role": "user", "content": "x"}], stream=True
        )


def test_client_leaving_mid_stream_closes_the_upstream(harness: Any, make_table: Any, make_pods: Any) -> None:
    slow = harness.fake("slow")
    slow.chunks, slow.chunk_delay = 50, 0.05
    url, app = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", slow))))
    with _streaming_socket(url) as sock:
        assert b"slow-0" in sock.recv(65536) + sock.recv(65536)
    registry = app[gateway_app.METRICS].registry
    wait_for(
        lambda: (
            slow.disconnects
            and registry.get_sample_value(
                "modelyard_gateway_requests_total", {"model": "llama", "endpoint": "ns/a", "code": "499"}
            )
        ),
        30,
        "the upstream closed and the request counted as 499",
    )
    assert slow.disconnects == 1  # the gateway hung up on the model server too: no wasted generation
    target = f"ns/a@{slow.url.split('://')[1]}"
    assert (
        registry.get_sample_value("modelyard_gateway_in_flight", {"endpoint": "ns/a", "target": target}) == 0
    )


def test_client_leaving_during_keepalives_stops_the_wait(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    """The keepalive that finds the client gone ends the attempt at once (499), not when the
    model server's first event finally comes."""
    slow = harness.fake("slow")
    slow.mode, slow.delay = "slow_first", 120
    url, app = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", slow))), keepalive_interval=0.1
    )
    with _streaming_socket(url) as sock:
        received = b""
        while b": keepalive" not in received:
            received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200")
    registry = app[gateway_app.METRICS].registry
    target = f"ns/a@{slow.url.split('://')[1]}"
    wait_for(
        lambda: (
            registry.get_sample_value(
                "modelyard_gateway_requests_total", {"model": "llama", "endpoint": "ns/a", "code": "499"}
            )
            and registry.get_sample_value(
                "modelyard_gateway_in_flight", {"endpoint": "ns/a", "target": target}
            )
            == 0
        ),
        30,  # the model server would send its first event only after 120 s
        "the request counted as 499 and nothing left in flight",
    )


def test_client_gone_before_the_first_event_is_not_the_model_servers_failure(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    """The client hangs up while the gateway waits for the first event (no keepalives): the
    stream cannot be committed, which counts as 499, not as a failure of the target."""
    slow = harness.fake("slow")
    slow.mode, slow.delay = "slow_first", 0.3
    url, app = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", slow))),
        keepalive_interval=0,
        eject_after=1,  # one failure blamed on the target would eject it
    )
    with _streaming_socket(url):
        pass  # the request is sent; leaving the block hangs up before any event
    registry = app[gateway_app.METRICS].registry
    wait_for(
        lambda: registry.get_sample_value(
            "modelyard_gateway_requests_total", {"model": "llama", "endpoint": "ns/a", "code": "499"}
        ),
        30,
        "the request counted as 499",
    )
    assert not registry.get_sample_value("modelyard_gateway_ejections_total", {"endpoint": "ns/a"})
    assert _events(_raw_stream(url))[-1] == b"data: [DONE]"  # the target still serves
