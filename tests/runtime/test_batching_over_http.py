"""Continuous batching through the server: concurrent streams, queue signals, the 429 bound.

``/metrics`` exports the queue under the names the Gateway API Inference Extension reads from
vLLM (``vllm:num_requests_running``, ``vllm:num_requests_waiting``,
``vllm:kv_cache_usage_perc``, label ``model_name``) and under modelyard's own names.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import openai
import requests
from prometheus_client.parser import text_string_to_metric_families

from modelyard.runtime import options


def _samples(url: str) -> dict[str, float]:
    """Every sample of ``/metrics`` as ``name{label=value,...}`` -> value."""
    text = requests.get(url + "/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def _stream_text(client: openai.OpenAI, messages: Any, max_tokens: int) -> str:
    stream = client.chat.completions.create(
        model="tiny-llama",
        messages=messages,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_concurrent_streams_get_the_text_each_gets_alone(start_server: Any, handlers: dict[str, Any]) -> None:
    srv = start_server({"tiny-llama": handlers["tiny-llama"]})
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
    asks = [[{"role": "user", "content": f"story {i} " * (1 + i)}] for i in range(6)]
    alone = [
        client.chat.completions.create(
            model="tiny-llama", messages=m, max_tokens=48, temperature=0, extra_body={"ignore_eos": True}
        )
        .choices[0]
        .message.content
        for m in asks
    ]
    with concurrent.futures.ThreadPoolExecutor(len(asks)) as pool:
        together = list(pool.map(lambda m: _stream_text(client, m, 48), asks))
    assert together == alone


def test_metrics_show_running_and_waiting_and_the_queue_bound_answers_429(
    start_server: Any, slow_llama: Any
) -> None:
    handler = slow_llama(0.01, max_num_seqs=2)
    settings = options.ServerSettings(max_queue=2, warmup=False)
    srv = start_server({"tiny-llama": handler}, settings)
    body = {
        "model": "tiny-llama",
        "messages": [{"role": "user", "content": "go on and on " * 8}],
        "max_tokens": 150,
        "temperature": 0,
        "ignore_eos": True,
    }
    url = srv.url + "/v1/chat/completions"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        busy = [pool.submit(requests.post, url, json=body, timeout=120) for _ in range(4)]
        deadline = time.monotonic() + 60
        while True:
            m = _samples(srv.url)
            if (
                m["vllm:num_requests_running{model_name=tiny-llama}"] == 2
                and m["vllm:num_requests_waiting{model_name=tiny-llama}"] == 2
            ):
                break
            assert time.monotonic() < deadline, f"never saw 2 running and 2 waiting: {m}"
            time.sleep(0.02)
        assert m["modelyard_runtime_requests_running{model=tiny-llama}"] == 2
        assert m["modelyard_runtime_requests_waiting{model=tiny-llama}"] == 2
        assert 0 < m["vllm:kv_cache_usage_perc{model_name=tiny-llama}"] <= 1
        assert m["modelyard_runtime_kv_cache_bytes{model=tiny-llama}"] > 0

        refused = requests.post(url, json=body, timeout=30)  # 2 running + 2 waiting: full
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert all(f.result().status_code == 200 for f in busy)

    m = _samples(srv.url)
    assert m["vllm:num_requests_running{model_name=tiny-llama}"] == 0
    assert m["vllm:num_requests_waiting{model_name=tiny-llama}"] == 0
    assert m["vllm:kv_cache_usage_perc{model_name=tiny-llama}"] == 0
    assert m["modelyard_runtime_prefix_cache_misses_total{model=tiny-llama}"] >= 1
    assert m["modelyard_runtime_prefix_cache_hits_total{model=tiny-llama}"] >= 1  # same prompt again
    assert m["vllm:prefix_cache_hits_total{model_name=tiny-llama}"] > 0
    assert m["vllm:prefix_cache_queries_total{model_name=tiny-llama}"] > 0


def test_models_that_do_not_batch_generation_report_their_limiter(server: Any) -> None:
    m = _samples(server.url)
    assert m["vllm:num_requests_running{model_name=tiny-bert}"] == 0
    assert m["vllm:num_requests_waiting{model_name=tiny-bert}"] == 0
    assert m["vllm:kv_cache_usage_perc{model_name=tiny-bert}"] == 0
