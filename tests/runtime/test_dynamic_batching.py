"""Concurrent embedding and rerank requests are coalesced into shared model calls."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import numpy as np
import pytest
import requests

from modelyard.runtime import options


@pytest.fixture(scope="module")
def batching_server(start_server: Any, handlers: dict[str, Any]) -> Any:
    """A wide window (50 ms) so coalescing does not hinge on this machine's timing."""
    settings = options.ServerSettings(batch_max_size=32, batch_window_ms=50)
    return start_server({k: handlers[k] for k in ("tiny-bert", "tiny-rerank")}, settings)


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(url, json=body, timeout=60)
    response.raise_for_status()
    return dict(response.json())


def _metric(server: Any, name: str, model: str) -> float:
    from modelyard.runtime.serving import keys

    return float(server.app[keys.METRICS].value(name, model=model))


def test_concurrent_embedding_requests_share_batches_and_keep_their_own_results(
    batching_server: Any, handlers: dict[str, Any]
) -> None:
    server = batching_server
    texts = [f"sentence number {i} about a cat" for i in range(48)]
    calls_before = _metric(server, "modelyard_runtime_batch_size_count", "tiny-bert")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(
            pool.map(
                lambda t: _post(server.url + "/v1/embeddings", {"model": "tiny-bert", "input": t}),
                texts,
            )
        )
    calls = _metric(server, "modelyard_runtime_batch_size_count", "tiny-bert") - calls_before
    assert calls < len(texts), f"{calls} model calls for {len(texts)} requests: nothing was coalesced"
    offline = handlers["tiny-bert"].embed(texts)
    for reply, want in zip(replies, offline, strict=True):
        assert np.allclose(reply["data"][0]["embedding"], want, atol=1e-5)


def test_a_request_larger_than_the_batch_is_split_and_reassembled(
    server: Any, handlers: dict[str, Any]
) -> None:
    texts = [f"text {i}" for i in range(75)]  # batch_max_size is 32
    reply = _post(
        server.url + "/v1/embeddings", {"model": "tiny-bert", "input": texts, "encoding_format": "float"}
    )
    got = np.array([d["embedding"] for d in reply["data"]])
    assert np.allclose(got, handlers["tiny-bert"].embed(texts), atol=1e-5)


def test_concurrent_rerank_requests_are_batched(batching_server: Any) -> None:
    server = batching_server
    before = _metric(server, "modelyard_runtime_batch_size_count", "tiny-rerank")
    body = {"model": "tiny-rerank", "query": "a cat", "documents": ["the cat sat", "stock market", "dog"]}
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda _: _post(server.url + "/v1/rerank", body), range(12)))
    calls = _metric(server, "modelyard_runtime_batch_size_count", "tiny-rerank") - before
    assert calls < 12
    assert all(r["results"] == replies[0]["results"] for r in replies)


def test_concurrent_requests_of_different_lengths_do_not_race_in_the_tokenizer(server: Any) -> None:
    """Token counting and batched encoding share one fast tokenizer (a real bug, found by the benchmark)."""
    texts = [" ".join(["word"] * (1 + i % 23)) for i in range(64)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(
            pool.map(
                lambda t: (
                    requests.post(
                        server.url + "/v1/embeddings", json={"model": "minilm", "input": t}, timeout=60
                    ).status_code
                ),
                texts,
            )
        )
    assert codes == [200] * len(texts)
