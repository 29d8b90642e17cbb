"""Bounds: the largest body (413) and requests in flight per key (429)."""

from __future__ import annotations

import threading
import time
from typing import Any

import openai
import pytest

from modelyard.gateway import auth, discovery


def test_body_larger_than_the_limit_is_413(harness: Any, make_table: Any, make_pods: Any) -> None:
    fake = harness.fake("pod")
    url, _ = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", fake))), max_body_bytes=2000
    )
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=10)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x" * 5000}])
    assert caught.value.status_code == 413
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert not fake.requests


def test_concurrency_per_key_beyond_the_limit_is_429(harness: Any, make_table: Any, make_pods: Any) -> None:
    fake = harness.fake("pod")
    fake.mode, fake.delay = "slow", 0.6
    keys = auth.KeyTable.from_data({"alice": "sk-a", "alice.concurrency": "1", "bob": "sk-b"})
    url, _ = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", fake)), keys))

    def chat(key: str) -> str:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)
        reply = client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
        return reply.choices[0].message.content or ""

    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(chat("sk-a")))
    first.start()
    time.sleep(0.2)
    with pytest.raises(openai.RateLimitError) as caught:
        chat("sk-a")
    assert caught.value.body["code"] == "concurrency_limit"  # type: ignore[index]
    assert chat("sk-b") == "hello from pod"  # other keys are not affected
    first.join(5)
    assert results == ["hello from pod"]
    assert chat("sk-a") == "hello from pod"  # the slot was released
