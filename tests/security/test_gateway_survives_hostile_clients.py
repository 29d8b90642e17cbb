"""No request can starve the gateway: each bound, attacked while a well-behaved client is served.

Every test runs a real ``modelyard gateway`` process (static routes, API keys) in front of a fake
model server process (:mod:`attackkit`), starts the well-behaved client (its own process:
ordinary chat requests, plain and streamed, one key), sends one kind of hostile input from this
process, and then checks, side by side:

- the hostile requests got the bounded answer (a 4xx/5xx in the OpenAI shape naming the limit,
  or for a stream the error event), never a hang (generous client timeouts);
- the well-behaved client had no failure (a 429 with ``Retry-After`` it waits out, as the OpenAI
  SDK does, is not a failure);
- the gateway counted the bound in ``modelyard_gateway_limited_total{limit=...}``, and is alive.

Each test prints the well-behaved client's p50/p99 during the attack; the module prints the
table (with the baseline without attack) at its end: ``pytest tests/security/
test_gateway_survives_hostile_clients.py -s``. No assertion is on time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from attackkit import BAD_KEY, Gateway, Report, Upstream, WellBehaved, measure

pytestmark = pytest.mark.timeout(600)

FLAGS = ("--body-timeout", "3", "--max-in-flight", "32")
"""Defaults but for two: a body deadline the test can wait for, and a cap a flood can reach."""
MIB = 1024 * 1024
RESULTS: dict[str, Report] = {}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    yield
    print("\nwell-behaved client (4 workers, plain and streamed chat) during each attack:")
    for label, report in RESULTS.items():
        print(report.line(label))


@pytest.fixture()
def gateway(upstream: Upstream) -> Iterator[Gateway]:
    """A fresh gateway per test, so its peak memory is that test's."""
    with Gateway(upstream, *FLAGS) as gw:
        yield gw
    assert "Traceback" not in gw.log, gw.log[-3000:]


def test_baseline_without_attack(gateway: Gateway) -> None:
    report = measure(gateway, seconds=6)
    _record("baseline (no attack)", report)


async def _post(
    url: str, data: Any, timeout: float = 120, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {BAD_KEY}", "Content-Type": "application/json", **headers}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url + "/v1/chat/completions", data=data, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def _error(data: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(data)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _record(label: str, report: Report) -> None:
    RESULTS[label] = report
    print("\n" + report.line(label))
    assert report.failures == [], report.failures[:5]
    assert report.answered > 0


def _for_a_while(seconds: float = 5) -> Iterator[int]:
    """Rounds of an attack: at least 3, and until ``seconds`` have passed."""
    end, index = time.monotonic() + seconds, 0
    while index < 3 or time.monotonic() < end:
        yield index
        index += 1


def _chat(model: str, **extra: Any) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}).encode()


def test_json_32_mib_deep_wide_or_not_an_object(gateway: Gateway) -> None:
    deep = b'{"model": "chat", "x": ' + b"[" * (32 * MIB - 30) + b"}"
    wide = b'{"model": "chat", "messages": [], "x": [' + b"[]," * (32 * MIB // 3 - 20) + b"[]]}"
    flat = b"[" + b"[]," * (32 * MIB // 3 - 1) + b"[]]"
    answers: list[tuple[int, bytes]] = []

    async def attack() -> None:
        for _ in _for_a_while():
            for hostile in (deep, wide, flat):
                status, _, data = await _post(gateway.url, hostile)
                answers.append((status, data))

    with WellBehaved(gateway) as good:
        asyncio.run(attack())
    _record("JSON 32 MiB: deep / wide / array", good.report)
    for (status, data), expected in zip(answers, [400, 200, 400] * len(answers), strict=False):
        assert status == expected, data[:300]
    deep_errors = [_error(data) for status, data in answers[0::3]]
    assert all("json_depth" in e["message"] for e in deep_errors)
    assert all("must be a JSON object" in _error(data)["message"] for _, data in answers[2::3])
    assert gateway.metric("modelyard_gateway_limited_total", limit="json_depth") == len(deep_errors)
    # the wide body was forwarded whole, and parsing it built no objects: json.loads built
    # 11 million lists (over 1 GiB) for each of them
    print(f"gateway peak RSS {gateway.peak_rss_bytes() / MIB:.0f} MiB")
    assert gateway.peak_rss_bytes() < 256 * MIB, gateway.peak_rss_bytes()
    assert gateway.alive


def test_body_over_the_limit_with_and_without_a_length(gateway: Gateway) -> None:
    body = _chat("chat", pad="x" * (33 * MIB))

    async def chunked() -> Any:
        for start in range(0, len(body), MIB):
            yield body[start : start + MIB]

    async def attack() -> list[tuple[int, dict[str, str], bytes]]:
        answers = []
        for _ in _for_a_while():
            answers.append(await _post(gateway.url, body))
            answers.append(await _post(gateway.url, chunked()))
        return answers

    with WellBehaved(gateway) as good:
        answers = asyncio.run(attack())
    _record("body of 33 MiB (limit 32 MiB)", good.report)
    for status, _, data in answers:
        assert status == 413
        assert "--max-body-bytes" in _error(data)["message"]
    assert gateway.metric("modelyard_gateway_limited_total", limit="max_body_bytes") == len(answers)


async def _trickle(url: str, answered: list[bytes]) -> None:
    """Headers, then one byte of a 10 000-byte body every half second, until an answer comes."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + BAD_KEY.encode() + b"\r\nContent-Length: 10000\r\n\r\n{"
    )

    async def drip() -> None:
        while True:
            await asyncio.sleep(0.5)
            writer.write(b" ")
            await writer.drain()

    dripping = asyncio.create_task(drip())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=60)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        answered.append(head + await asyncio.wait_for(reader.readexactly(length), timeout=60))
    finally:
        dripping.cancel()
        writer.close()


def test_slowloris_bodies_on_many_connections(gateway: Gateway) -> None:
    answered: list[bytes] = []

    async def attack() -> None:
        await asyncio.gather(*(_trickle(gateway.url, answered) for _ in range(200)))

    with WellBehaved(gateway) as good:
        asyncio.run(attack())
    _record("slowloris: 200 trickled bodies", good.report)
    assert len(answered) == 200
    for answer in answered:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
        assert "--body-timeout" in _error(answer.split(b"\r\n\r\n", 1)[1])["message"]
    assert gateway.metric("modelyard_gateway_limited_total", limit="body_timeout") == 200


def test_upstream_answering_with_a_huge_body(gateway: Gateway) -> None:
    async def attack() -> list[tuple[int, dict[str, str], bytes]]:
        return [await _post(gateway.url, _chat("huge")) for _ in _for_a_while()]

    with WellBehaved(gateway) as good:
        answers = asyncio.run(attack())
    _record("upstream: 256 MiB answer", good.report)
    for status, _, data in answers:
        assert status == 502, data[:300]
        assert "--max-response-bytes" in _error(data)["message"]
    # each request tried the target 3 times (2 retries), each read stopped at the limit
    limited = gateway.metric("modelyard_gateway_limited_total", limit="max_response_bytes")
    assert limited == 3 * len(answers)
    print(f"gateway peak RSS {gateway.peak_rss_bytes() / MIB:.0f} MiB")
    assert gateway.peak_rss_bytes() < 256 * MIB, gateway.peak_rss_bytes()


def test_upstream_streaming_a_giant_event(gateway: Gateway) -> None:
    async def attack() -> list[tuple[int, dict[str, str], bytes]]:
        return [await _post(gateway.url, _chat("giant-event", stream=True)) for _ in _for_a_while()]

    with WellBehaved(gateway) as good:
        answers = asyncio.run(attack())
    _record("upstream: one 256 MiB SSE event", good.report)
    for status, _, data in answers:
        assert status == 200, data[:300]
        first, error, done = data.split(b"\n\n")[:3]
        assert b'"hi"' in first and done == b"data: [DONE]"
        event = _error(error.removeprefix(b"data: "))
        assert event["code"] == "upstream_event_too_large" and "--max-event-bytes" in event["message"]
    assert gateway.metric("modelyard_gateway_limited_total", limit="max_event_bytes") == len(answers)


def test_flood_above_the_in_flight_cap(gateway: Gateway, upstream: Upstream) -> None:
    upstream.reset()

    async def wave() -> list[tuple[int, dict[str, str], bytes]]:
        return list(await asyncio.gather(*(_post(gateway.url, _chat("slow")) for _ in range(300))))

    async def attack() -> list[tuple[int, dict[str, str], bytes]]:
        answers = []
        for _ in range(3):
            answers += await wave()
        return answers

    with WellBehaved(gateway) as good:
        answers = asyncio.run(attack())
    _record("flood: 3 waves of 300 (cap 32)", good.report)
    refused = [(headers, data) for status, headers, data in answers if status == 429]
    assert {status for status, _, _ in answers} == {200, 429}
    assert len(refused) >= 3 * (300 - 32)
    for headers, data in refused:
        assert headers["Retry-After"] == "1"
        error = _error(data)
        assert error["code"] == "gateway_busy" and "--max-in-flight" in error["message"]
    assert upstream.stats()["max_in_flight"] <= 32  # the model server never saw more
    assert gateway.metric("modelyard_gateway_limited_total", limit="max_in_flight") >= len(refused)
    time.sleep(0.5)
    assert gateway.metric("modelyard_gateway_requests_in_flight") == 0
