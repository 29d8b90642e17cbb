"""Requests and tokens per minute per API key (``<name>.rpm``, ``<name>.tpm``): 429 with Retry-After.

The limiter's windows are driven by a hand-set clock; the gateway tests go through the real
app in front of a fake upstream.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
import requests

from modelyard.gateway import auth, body, discovery, ratelimit, sse


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _key(**limits: int) -> auth.ApiKey:
    data = {"k": "sk-k", **{f"k.{name}": str(value) for name, value in limits.items()}}
    (key,) = auth.KeyTable.from_data(data).keys
    return key


def test_rpm_counts_requests_of_the_last_minute_and_says_when_to_retry() -> None:
    clock = Clock(1000.0)
    limiter = ratelimit.RateLimiter(clock)
    key = _key(rpm=3)
    assert limiter.admit(key) is None and limiter.admit(key) is None  # two at t=1000
    clock.now = 1030.5
    assert limiter.admit(key) is None  # the third at t=1030
    clock.now = 1031.0
    refused = limiter.admit(key)
    assert refused is not None and refused.limit == "rpm"
    assert refused.retry_after == 29  # the two of t=1000 leave the window at t=1060
    assert "limit of 3 requests per minute (rpm)" in refused.message
    clock.now = 1059.9
    assert limiter.admit(key) is not None  # refusals are not counted, and still too early
    clock.now = 1060.0
    assert limiter.admit(key) is None and limiter.admit(key) is None
    refused = limiter.admit(key)
    assert refused is not None and refused.retry_after == 30  # the one of t=1030 leaves at 1090


def test_tpm_counts_reported_tokens_and_refuses_once_they_reach_the_limit() -> None:
    clock = Clock(50.0)
    limiter = ratelimit.RateLimiter(clock)
    key = _key(tpm=100)
    assert limiter.admit(key) is None
    assert limiter.count_tokens(key, {"prompt_tokens": 60, "completion_tokens": 30, "total_tokens": 90}) == 90
    assert limiter.admit(key) is None  # 90 < 100: the request that crosses the limit is served
    clock.now = 80.0
    limiter.count_tokens(key, {"prompt_tokens": 20, "completion_tokens": 5})
    refused = limiter.admit(key)
    assert refused is not None and refused.limit == "tpm" and refused.retry_after == 30
    assert "limit of 100 tokens per minute (tpm)" in refused.message
    clock.now = 110.0
    assert limiter.admit(key) is None  # the 90 of t=50 left; 25 remain


def test_keys_are_counted_apart_and_unlimited_keys_are_not_counted() -> None:
    limiter = ratelimit.RateLimiter(Clock())
    one, other, free = _key(rpm=1), auth.ApiKey("other", b"", rpm=1), _key()
    assert limiter.admit(one) is None and limiter.admit(one) is not None
    assert limiter.admit(other) is None
    assert all(limiter.admit(free) is None for _ in range(1000))


def test_tokens_of_a_usage_object() -> None:
    assert ratelimit.tokens({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}) == 7
    assert ratelimit.tokens({"prompt_tokens": 5, "total_tokens": 5}) == 5  # embeddings
    assert ratelimit.tokens({"prompt_tokens": True, "completion_tokens": -2}) == 0
    assert ratelimit.tokens(None) == 0 and ratelimit.tokens([1]) == 0


def test_rpm_and_tpm_in_the_key_table_and_a_bad_value_unloads_the_key() -> None:
    table = auth.KeyTable.from_data(
        {
            "a": "sk-a",
            "a.rpm": "60",
            "a.tpm": "1000",
            "b": "sk-b",
            "b.rpm": "lots",
            "c": "sk-c",
            "c.tpm": "-1",
        }
    )
    assert [(k.name, k.rpm, k.tpm) for k in table.keys] == [("a", 60, 1000)]
    assert table.problems == (
        "b.rpm must be a whole number >= 0, not 'lots'; key 'b' is not loaded",
        "c.tpm must be a whole number >= 0, not '-1'; key 'c' is not loaded",
    )
    assert "sk-" not in repr(table)


def test_asking_a_stream_for_its_usage() -> None:
    plain = b' {"model": "m", "stream": true}'
    asked, already = body.ask_stream_usage(plain)
    assert not already
    assert json.loads(asked) == {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    other = b'{"model": "m", "stream_options": {"continuous_usage_stats": true}, "stream": true}'
    asked, already = body.ask_stream_usage(other)
    assert not already
    assert json.loads(asked)["stream_options"] == {"continuous_usage_stats": True, "include_usage": True}
    mine = b'{"model": "m", "stream_options": {"include_usage": true}}'
    assert body.ask_stream_usage(mine) == (mine, True)
    broken = b'{"model": "m", "stream_options": {"include_usage": tru}'  # the model server will say so
    assert body.ask_stream_usage(broken) == (broken, True)


def test_the_usage_chunk_is_hidden_only_when_the_gateway_asked_for_it() -> None:
    events = (
        b'data: {"choices": [{"delta": {"content": "a"}}], "usage": null}\n\n'
        b'data: {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert sse.for_client(events, False) == events
    assert sse.for_client(events, True) == (
        b'data: {"choices": [{"delta": {"content": "a"}}], "usage": null}\n\ndata: [DONE]\n\n'
    )


# -- through the gateway ------------------------------------------------------------------------


def _post(url: str, key: str, **extra: Any) -> requests.Response:
    payload = {"model": "llama", "messages": [{"role": "user", "content": "x"}], **extra}
    headers = {"Authorization": f"Bearer {key}"}
    return requests.post(f"{url}/v1/chat/completions", json=payload, headers=headers, timeout=10)


def test_a_key_over_its_rpm_gets_429_with_retry_after_and_others_are_served(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    fake = harness.fake("pod")
    keys = auth.KeyTable.from_data({"alice": "sk-alice", "alice.rpm": "2", "bob": "sk-bob"})
    url, _ = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", fake)), keys))
    assert [_post(url, "sk-alice").status_code for _ in range(2)] == [200, 200]
    refused = _post(url, "sk-alice")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"] == {
        "message": refused.json()["error"]["message"],
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert "limit of 2 requests per minute (rpm)" in refused.json()["error"]["message"]
    assert len(fake.requests) == 2
    assert [_post(url, "sk-bob").status_code for _ in range(5)] == [200] * 5
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-alice", max_retries=0)
    with pytest.raises(openai.RateLimitError):  # what an OpenAI client sees
        client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
    metrics = requests.get(f"{url}/metrics", timeout=10).text
    assert 'modelyard_gateway_key_limited_total{key="alice",limit="rpm"} 2.0' in metrics


def test_tpm_counts_streams_by_the_usage_chunk_the_gateway_asks_for(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    fake = harness.fake("pod")
    fake.chunks = 3  # usage: 3 prompt + 3 completion tokens
    keys = auth.KeyTable.from_data({"alice": "sk-alice", "alice.tpm": "10", "bob": "sk-bob"})
    url, _ = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", fake)), keys))
    first = _post(url, "sk-alice", stream=True)
    assert first.status_code == 200
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    assert '"usage"' not in first.text and first.text.endswith("data: [DONE]\n\n")  # not asked: hidden
    second = _post(url, "sk-alice", stream=True, stream_options={"include_usage": True})
    assert '"usage": {"prompt_tokens": 3' in second.text  # asked: shown
    refused = _post(url, "sk-alice", stream=True)  # 12 tokens >= 10
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert "limit of 10 tokens per minute (tpm)" in refused.json()["error"]["message"]
    assert _post(url, "sk-bob", stream=True).status_code == 200
    assert "stream_options" not in fake.requests[-1]["body"]  # no tpm: the body is untouched
