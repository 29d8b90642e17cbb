"""A client that goes away mid-stream stops its generation (asserted through the metrics).

The tiny model writes thousands of tokens a second, faster than a client can hang up, so this
test slows its forward pass to 5 ms a token: a generation left running would take 15 s.
"""

from __future__ import annotations

import functools
import pathlib
import time
from typing import Any

import openai
import pytest

from kit import wait_for

MAX_TOKENS = 3000


@pytest.fixture()
def slow_llama(models_dir: pathlib.Path) -> Any:
    from modelyard.runtime import providers
    from modelyard.runtime.handlers import chat

    handler = chat.TextChatModel(
        str(models_dir / "llama"), "cpu", name="tiny-llama", provider=providers.create_provider("local")
    )
    forward = handler.model.forward

    @functools.wraps(forward)
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.005)
        return forward(*args, **kwargs)

    handler.model.forward = slow
    return handler


def _metric(server: Any, name: str) -> float:
    from modelyard.runtime.serving import keys

    return float(server.app[keys.METRICS].value(name, model="tiny-llama"))


def test_closing_a_stream_cancels_the_generation(start_server: Any, slow_llama: Any) -> None:
    srv = start_server({"tiny-llama": slow_llama})
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        model="tiny-llama",
        messages=[{"role": "user", "content": "tell me everything"}],
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
        if received >= 3:
            break
    stream.close()  # the client disconnects

    wait_for(lambda: _metric(srv, "modelyard_runtime_generations_cancelled_total") >= 1, 60,
             "the generation cancelled")  # fmt: skip
    generated = _metric(srv, "modelyard_runtime_generated_tokens_total")
    assert 3 <= generated < MAX_TOKENS, f"{generated} tokens generated for a stream closed after 3"

    # the model's slot is free again: the next request is served, and it is all that runs on
    reply = client.chat.completions.create(
        model="tiny-llama", messages=[{"role": "user", "content": "hi"}], max_tokens=2, temperature=0
    )
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None
    after = _metric(srv, "modelyard_runtime_generated_tokens_total")
    assert after == generated + reply.usage.completion_tokens  # the cancelled generation ran no further


def test_a_non_streaming_request_whose_client_left_is_cancelled(start_server: Any, slow_llama: Any) -> None:
    import requests

    srv = start_server({"tiny-llama": slow_llama})
    body = {
        "model": "tiny-llama",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": MAX_TOKENS,
        "ignore_eos": True,
    }
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(srv.url + "/v1/chat/completions", json=body, timeout=0.5)
    wait_for(lambda: _metric(srv, "modelyard_runtime_generations_cancelled_total") >= 1, 60,
             "the generation cancelled")  # fmt: skip
    assert _metric(srv, "modelyard_runtime_generated_tokens_total") < MAX_TOKENS  # cut short
