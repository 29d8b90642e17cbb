"""Admission control (429 when a model's queue is full), readiness after warm-up, models, metrics."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import openai
import pytest
import requests

from modelyard.runtime import options


class GatedChat:
    """A document-style custom handler that blocks until released (no extra keyword arguments)."""

    capabilities = ["chat-completion"]
    owned_by = "test"

    def __init__(self) -> None:
        self.name = "gated"
        self.release = threading.Event()
        self.started = threading.Event()

    def generate(
        self,
        messages: Any,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str] | None = None,
        cancel_event: threading.Event | None = None,
    ) -> Any:
        from modelyard.runtime import protocols

        self.started.set()
        self.release.wait(20)
        return protocols.ChatGeneration("done", 1, 1)

    def count_tokens(self, messages: Any, *, add_generation_prompt: bool = True) -> int:
        return 1


def test_a_full_queue_answers_429_and_counts_the_rejection(start_server: Any) -> None:
    handler = GatedChat()
    srv = start_server({"gated": handler}, options.ServerSettings(max_queue=1, warmup=False))
    body = {"model": "gated", "messages": [{"role": "user", "content": "x"}]}
    url = srv.url + "/v1/chat/completions"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = pool.submit(requests.post, url, json=body, timeout=30)
        assert handler.started.wait(10)
        waiting = pool.submit(requests.post, url, json=body, timeout=30)
        time.sleep(0.3)
        refused = requests.post(url, json=body, timeout=30)
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "rate_limit_error"
        handler.release.set()
        assert running.result().status_code == 200
        assert waiting.result().status_code == 200
    metrics = requests.get(srv.url + "/metrics", timeout=10).text
    assert 'modelyard_runtime_rejected_total{model="gated"} 1.0' in metrics


class SlowWarmEmbedder:
    capabilities = ["text-embedding"]
    dim = 2

    def __init__(self) -> None:
        self.name = "slow"
        self.gate = threading.Event()

    def embed(self, texts: list[str], cancel_event: Any = None) -> Any:
        import numpy as np

        self.gate.wait(20)
        return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)

    def count_tokens(self, texts: list[str]) -> int:
        return len(texts)


def test_ready_only_after_warm_up_while_health_answers_at_once(start_server: Any) -> None:
    handler = SlowWarmEmbedder()
    srv = start_server({"slow": handler}, wait=False)
    assert requests.get(srv.url + "/health", timeout=5).status_code == 200
    not_ready = requests.get(srv.url + "/ready", timeout=5)
    assert not_ready.status_code == 503
    assert "warming up" in not_ready.json()["reason"]
    handler.gate.set()
    srv.wait_ready(10)
    assert requests.get(srv.url + "/ready", timeout=5).json()["models"] == ["slow"]


def test_models_list_and_metrics_registry_per_app(server: Any, client: Any) -> None:
    ids = {m.id: m for m in client.models.list().data}
    assert {"tiny-llama", "tiny-bert", "tiny-rerank", "tiny-whisper", "minilm"} <= set(ids)
    assert ids["tiny-llama"].owned_by == "modelyard"
    assert client.models.retrieve("tiny-bert").id == "tiny-bert"
    with_error = requests.get(server.url + "/v1/models/missing", timeout=5)
    assert with_error.status_code == 404
    text = requests.get(server.url + "/metrics", timeout=5).text
    assert "modelyard_runtime_ready 1.0" in text
    client.embeddings.create(model="tiny-bert", input="count me")
    text = requests.get(server.url + "/metrics", timeout=5).text
    assert (
        'modelyard_runtime_requests_total{endpoint="/v1/embeddings",model="tiny-bert",status="200"}' in text
    )
    assert 'modelyard_runtime_request_seconds_count{endpoint="/v1/embeddings",model="tiny-bert"}' in text

    import prometheus_client

    assert (
        prometheus_client.REGISTRY.get_sample_value("modelyard_runtime_ready") is None
    )  # not the global one


def test_custom_document_style_handler_is_served(start_server: Any) -> None:
    handler = GatedChat()
    handler.release.set()
    srv = start_server({"gated": handler})
    c = openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
    reply = c.chat.completions.create(model="gated", messages=[{"role": "user", "content": "x"}], stop="##")
    assert reply.choices[0].message.content == "done"
    with pytest.raises(openai.BadRequestError) as refused:  # it has no seed keyword: never dropped silently
        c.chat.completions.create(model="gated", messages=[{"role": "user", "content": "x"}], seed=3)
    assert refused.value.body["param"] == "seed"
    streamed = c.chat.completions.create(
        model="gated", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices) == "done"
    assert c.models.list().data[0].owned_by == "test"
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(
            model="gated",
            messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_object"},
        )


def test_ready_turns_503_when_the_server_shuts_down(start_server: Any, handlers: dict[str, Any]) -> None:
    import asyncio

    srv = start_server({"tiny-bert": handlers["tiny-bert"]})
    asyncio.run_coroutine_threadsafe(srv.app.shutdown(), srv.loop).result(10)
    r = requests.get(srv.url + "/ready", timeout=5)
    assert r.status_code == 503 and r.json()["reason"] == "shutting down"


class BrokenEmbedder(SlowWarmEmbedder):
    def embed(self, texts: list[str], cancel_event: Any = None) -> Any:
        raise RuntimeError("CUDA error: out of memory")


def test_a_failed_warm_up_keeps_ready_at_503_with_the_reason(start_server: Any) -> None:
    srv = start_server({"broken": BrokenEmbedder()}, wait=False)
    deadline = time.monotonic() + 10
    while "failed" not in (reason := requests.get(srv.url + "/ready", timeout=5).json().get("reason", "")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert requests.get(srv.url + "/ready", timeout=5).status_code == 503
    assert "out of memory" in reason


class FailingMidStream:
    capabilities = ["chat-completion"]

    def __init__(self) -> None:
        self.name = "flaky"

    def generate(self, messages: Any, *, max_new_tokens: int, temperature: float, top_p: float,
                 stop: Any = None, cancel_event: Any = None, on_token: Any = None) -> Any:  # fmt: skip
        if on_token is not None:
            on_token("partial ")
            time.sleep(0.1)
        raise RuntimeError("device lost")


def test_a_failure_after_the_stream_began_ends_it_with_an_error_event(start_server: Any) -> None:
    srv = start_server({"flaky": FailingMidStream()}, options.ServerSettings(warmup=False))
    c = openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
    stream = c.chat.completions.create(
        model="flaky", messages=[{"role": "user", "content": "x"}], stream=True
    )
    seen = []
    with pytest.raises(openai.APIError, match="device lost"):
        for chunk in stream:
            if chunk.choices:
                seen.append(chunk.choices[0].delta.content)
    assert "partial " in seen
