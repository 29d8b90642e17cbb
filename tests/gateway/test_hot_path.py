"""The hot path's shortcuts (issue #19) change nothing a client or a scrape sees: a revoked or
rotated key takes effect on the next request, unlocked metric series expose what prometheus_client's own
would, the resume tracker reads lazily but completely, and one timer keeps every request's
timeout."""

from __future__ import annotations

import asyncio
import gc
import http.client
import json
import urllib.parse
from typing import Any

import openai
import prometheus_client
import pytest
from aiohttp import web

from modelyard.gateway import auth, cli, deadlines, discovery, metrics, resume, sse

KEYS = {"alice": "sk-alice-0123456789", "bob": "sk-bob-9876543210"}


def _chat(url: str, key: str) -> int:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)
    try:
        client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def test_a_revoked_key_is_refused_on_the_next_request(harness: Any, make_table: Any, make_pods: Any) -> None:
    fake = harness.fake("pod")
    source = discovery.StaticDiscovery(
        make_table(make_pods("ns/a", "llama", fake)), auth.KeyTable.from_data(KEYS)
    )
    url, _ = harness.gateway(source)
    assert [_chat(url, KEYS["alice"]) for _ in range(3)] == [200, 200, 200]
    source.set(keys=auth.KeyTable.from_data({"bob": KEYS["bob"]}))  # the keys Secret lost alice
    assert _chat(url, KEYS["alice"]) == 401
    assert _chat(url, KEYS["bob"]) == 200


def test_a_changed_key_value_takes_effect_on_the_next_request(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    fake = harness.fake("pod")
    source = discovery.StaticDiscovery(
        make_table(make_pods("ns/a", "llama", fake)), auth.KeyTable.from_data(KEYS)
    )
    url, _ = harness.gateway(source)
    assert _chat(url, KEYS["alice"]) == 200
    source.set(keys=auth.KeyTable.from_data({**KEYS, "alice": "sk-alice-rotated"}))
    assert _chat(url, KEYS["alice"]) == 401
    assert _chat(url, "sk-alice-rotated") == 200


def _exposition(registry: prometheus_client.CollectorRegistry) -> list[str]:
    """The exposition's lines less the ``_created`` timestamps (when each series was made)."""
    text = prometheus_client.generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_unlocked_series_expose_what_prometheus_clients_own_would() -> None:
    ours = metrics.Metrics()
    plain = metrics.Metrics()  # the same collectors, used through prometheus_client's .labels()
    steps: list[tuple[str, tuple[str, ...], str, float]] = [
        ("requests", ("llama", "ns/a", "200"), "inc", 1),
        ("requests", ("llama", "ns/a", "200"), "inc", 1),
        ("requests", ("llama", "none", "404"), "inc", 1),
        ("duration", ("llama", "ns/a", "200"), "observe", 0.003),
        ("duration", ("llama", "ns/a", "200"), "observe", 7.5),
        ("first_byte", ("llama", "ns/a"), "observe", 0.02),
        ("tokens", ("llama", "prompt"), "inc", 12),
        ("in_flight", ("ns/a", "ns/a@1"), "inc", 1),
        ("in_flight", ("ns/a", "ns/a@1"), "inc", 1),
        ("in_flight", ("ns/a", "ns/a@1"), "dec", 1),
        ("limited", ("max_body_bytes",), "inc", 1),
    ]
    for name, labels, op, amount in steps:
        getattr(ours.child(getattr(ours, name), *labels), op)(amount)
        getattr(getattr(plain, name).labels(*labels), op)(amount)
    demand, sent = ours.endpoint("ns/a")
    demand.inc()
    sent.inc(3)
    plain.endpoint_demand.labels("ns", "a").inc()
    plain.endpoint_requests.labels("ns", "a").inc(3)
    assert type(ours.child(ours.requests, "llama", "ns/a", "200")._value) is not type(
        plain.requests.labels("llama", "ns/a", "200")._value
    )  # the swap did happen (a prometheus_client that keeps its values otherwise skips it)
    assert _exposition(ours.registry) == _exposition(plain.registry)
    assert (
        ours.registry.get_sample_value(
            "modelyard_gateway_request_duration_seconds_bucket",
            {"model": "llama", "endpoint": "ns/a", "code": "200", "le": "0.005"},
        )
        == 1
    )


@pytest.mark.parametrize("amount", [0.0, 0.005, 0.0050001, 300.0, 301.0, -1.0, float("nan"), float("inf")])
def test_the_unlocked_methods_put_every_value_where_prometheus_clients_own_would(amount: float) -> None:
    """A bucket's bound itself, between bounds, past the last, below the first, NaN (no bucket)."""
    ours = metrics.Metrics()
    plain = metrics.Metrics()
    for histogram in ("duration", "first_byte"):
        labels = ("llama", "ns/a", "200")[: 3 if histogram == "duration" else 2]
        ours.child(getattr(ours, histogram), *labels).observe(amount)
        getattr(plain, histogram).labels(*labels).observe(amount)
    ours.overhead.observe(amount)
    plain.overhead.observe(amount)
    gauge, reference = ours.child(ours.in_flight, "ns/a", "t"), plain.in_flight.labels("ns/a", "t")
    for step in (gauge, reference):
        step.inc(2.5)
        step.dec(amount if amount == amount else 1)
        step.inc()
        step.dec()
    counter = ours.child(ours.tokens, "llama", "prompt")
    if not amount < 0:  # (NaN too)
        counter.inc(amount)
        plain.tokens.labels("llama", "prompt").inc(amount)
    else:
        with pytest.raises(ValueError):
            counter.inc(amount)
    counter.inc()
    plain.tokens.labels("llama", "prompt").inc()
    assert "observe" in vars(ours.child(ours.duration, "llama", "ns/a", "200"))  # the fast path is on
    assert _exposition(ours.registry) == _exposition(plain.registry)


def test_the_unlabelled_overhead_histogram_counts_as_prometheus_clients_own() -> None:
    ours = metrics.Metrics()
    registry = prometheus_client.CollectorRegistry()
    name = "modelyard_gateway_overhead_seconds"
    reference = prometheus_client.Histogram(name, "x", buckets=metrics._FAST, registry=registry)
    for seconds in (0.0002, 0.004, 0.004, 0.3):
        ours.overhead.observe(seconds)
        reference.observe(seconds)
    bounds = [*(str(b) for b in metrics._FAST), "+Inf"]
    for suffix, labels in [("_bucket", {"le": b}) for b in bounds] + [("_sum", {}), ("_count", {})]:
        theirs = registry.get_sample_value(name + suffix, labels)
        assert ours.registry.get_sample_value(name + suffix, labels) == theirs, (suffix, labels)
        assert theirs is not None, (suffix, labels)
    assert ours.registry.get_sample_value(name + "_bucket", {"le": "0.005"}) == 3


def _events(*texts: str) -> bytes:
    chunks = [
        {"id": "c1", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": t}}]}
        for t in texts
    ]
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)


def test_the_tracker_reads_what_it_kept_and_holds_a_bounded_amount() -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000})
    tracker = resume.Tracker("chat", body.encode())
    sent: list[str] = []
    for block in range(400):
        texts = [f"w{block}-{i} " for i in range(5)]
        sent += texts
        tracker.take(_events(*texts))
        assert tracker._held <= resume.UNREAD_BYTES
    assert not tracker.done
    tracker.take(_events("[DONE] as text"))  # a chunk whose text says [DONE] does not end it
    assert not tracker.done
    assert tracker.plan() == "resume"
    assert tracker.text == "".join(sent) + "[DONE] as text"
    assert tracker.tokens == len(sent) + 1
    assert json.loads(tracker.body_for("m"))["max_tokens"] == 100000 - len(sent) - 1


def test_the_tracker_sees_done_as_it_passes() -> None:
    tracker = resume.Tracker("chat", b"{}")
    tracker.take(_events("a") + b"data: [DONE]\n\n")
    assert tracker.done
    assert tracker.plan() == "done"


def test_one_timer_cancels_exactly_the_requests_past_their_deadline() -> None:
    async def scenario() -> tuple[list[str], bool]:
        clock = deadlines.Deadlines(0.2)
        outcome: list[str] = []

        async def request(name: str, work: float) -> None:
            task = asyncio.current_task()
            assert task is not None
            clock.add(task)
            try:
                await asyncio.sleep(work)
                outcome.append(f"{name} done")
            except asyncio.CancelledError:
                if clock.done(task):
                    task.uncancel()
                    outcome.append(f"{name} timed out")
                    return
                raise
            finally:
                clock.done(task)

        await asyncio.gather(request("slow", 5), request("quick", 0.01), request("slow2", 5))
        await asyncio.sleep(0.3)  # past the timer's last firing: nothing left for it to do
        return outcome, clock._timers._timer is None

    outcome, idle = asyncio.run(scenario())
    assert sorted(outcome) == ["quick done", "slow timed out", "slow2 timed out"]
    assert idle


def test_one_timer_fires_exactly_the_waits_not_discarded_in_time() -> None:
    """The first keepalives of all streams share one timer: a stream whose first event came
    (discarded) gets none; the others get theirs after the interval, in the order they began."""

    async def scenario() -> tuple[list[str], list[str], bool]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        clock: deadlines.Timers[str] = deadlines.Timers(0.1, fired.append)
        for name in ("a", "b", "c"):
            clock.add(name, loop)
        clock.discard("b")
        await asyncio.sleep(0.05)
        early = list(fired)
        clock.add("d", loop)
        await asyncio.sleep(0.3)
        return early, fired, clock._timer is None

    early, fired, idle = asyncio.run(scenario())
    assert early == []
    assert fired == ["a", "c", "d"]
    assert idle


@pytest.mark.parametrize("stream", [False, True])
def test_after_a_timeout_the_same_connection_serves_the_next_request(
    harness: Any, make_table: Any, make_pods: Any, stream: bool
) -> None:
    hung, fine = harness.fake("hung"), harness.fake("fine")
    hung.mode = "hang"
    table = make_table(make_pods("ns/a", "slow", hung), make_pods("ns/b", "llama", fine))
    url, _ = harness.gateway(discovery.StaticDiscovery(table), request_timeout=0.3)
    where = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    statuses = []
    for model in ("slow", "llama", "slow", "llama"):
        body = {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": stream}
        connection.request(
            "POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"}
        )
        answer = connection.getresponse()
        answer.read()
        statuses.append(answer.status)
    connection.close()
    # a stream's 504 comes as an error event on a committed 200 when keepalives went first;
    # with none due before the timeout it is a plain 504
    assert statuses == [504, 200, 504, 200]


@pytest.mark.parametrize("size", [1500, 5000])
def test_a_chunked_body_is_held_to_the_limit_too(
    harness: Any, make_table: Any, make_pods: Any, size: int
) -> None:
    """A body with no Content-Length, all in one packet, is taken as it lies: still bounded."""
    fake = harness.fake("pod")
    table = make_table(make_pods("ns/a", "llama", fake))
    url, _ = harness.gateway(discovery.StaticDiscovery(table), max_body_bytes=2000)
    body = json.dumps({"model": "llama", "messages": [{"role": "user", "content": "x" * size}]}).encode()
    where = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    connection.request(
        "POST",
        "/v1/chat/completions",
        iter([body]),
        {"Content-Type": "application/json"},
        encode_chunked=True,
    )
    answer = connection.getresponse()
    answer.read()
    connection.close()
    assert answer.status == (413 if size > 2000 else 200)
    assert len(fake.requests) == (0 if size > 2000 else 1)


def test_the_served_gateway_freezes_its_startup_heap_and_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        asyncio.run(cli._freeze_heap(web.Application()))
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (cli.YOUNG_COLLECTION, before[1], before[2])
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "x", "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}',
        b'{"usage": {"prompt_tokens": 3, "details": {"cached_tokens": 1}, "completion_tokens": 4}}',
        b'{"usage": {"note": "a}b", "prompt_tokens": 3}}',
        b'{"usage": {"prompt_tokens": NaN}}',
        b'{"usage": {"note": "\xff", "prompt_tokens": 5}}',
        b'{"usage": {"prompt_tokens": 1, "prompt_tokens": 7}}',
        b'{"usage": {"prompt_tokens": 123456789012345678901234567890}}',
        b'{"usage": {"prompt_tokens": 1}',
        b'{"usage": null}',
        b'{"usage": {"input_tokens": 2, "output_tokens": 3}} and more',
    ],
)
def test_a_plain_answers_usage_is_what_the_stdlib_reader_finds(body: bytes) -> None:
    """The usage of a plain answer, read with msgspec when it can, is the stdlib's own."""
    start = body.find(b"{", body.rfind(b'"usage"'))
    try:
        expected, _ = json.JSONDecoder().raw_decode(body[start:].decode(errors="replace"))
    except ValueError:
        expected = None
    found = sse.find_json_usage(body)
    if not isinstance(expected, dict):
        assert found is None
    else:
        assert repr(found) == repr(sse.counted(expected))
