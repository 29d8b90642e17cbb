"""Bad input is a 4xx in the OpenAI error shape naming the field; never a 500."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import requests


def _post(server: Any, path: str, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(server.url + path, json=body, timeout=30, **kwargs)


def _error(r: requests.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    return dict(body["error"])


def test_unknown_model_is_404_model_not_found(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["param"] == "model"
    assert info.value.body["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "tiny-llama", "messages": []}, "messages"),
        ({"model": "tiny-llama", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        (
            {"model": "tiny-llama", "messages": [{"role": "user", "content": "x"}], "temperature": 9},
            "temperature",
        ),
        (
            {"model": "tiny-llama", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            "max_tokens",
        ),
        (
            {"model": "tiny-llama", "messages": [{"role": "user", "content": "x"}], "max_tokens": 99999},
            "max_tokens",
        ),
        (
            {"model": "tiny-llama", "messages": [{"role": "user", "content": "x"}], "min_tokens": "a"},
            "min_tokens",
        ),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
def test_invalid_chat_fields_are_400_naming_the_field(server: Any, body: dict[str, Any], param: str) -> None:
    r = _post(server, "/v1/chat/completions", body)
    assert r.status_code == 400, r.text
    error = _error(r)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_unknown_fields_never_break_a_request(server: Any) -> None:
    body = {
        "model": "tiny-llama",
        "messages": [{"role": "user", "content": "x", "weird": 1}],
        "max_tokens": 2,
        "some_future_field": {"a": [1, 2]},
        "logit_bias": {"1": 2},
    }
    assert _post(server, "/v1/chat/completions", body).status_code == 200
    emb = {"model": "tiny-bert", "input": "x", "user": "u", "another": True}
    assert _post(server, "/v1/embeddings", emb).status_code == 200


def test_malformed_json_and_wrong_endpoint_for_the_model(server: Any) -> None:
    r = requests.post(server.url + "/v1/chat/completions", data=b"{not json", timeout=10)
    assert r.status_code == 400 and "JSON" in _error(r)["message"]
    r = _post(server, "/v1/embeddings", {"model": "tiny-llama", "input": "x"})
    assert r.status_code == 400 and _error(r)["param"] == "model"
    r = _post(server, "/v1/embeddings", {"model": "tiny-bert", "input": ""})
    assert r.status_code == 400 and _error(r)["param"] == "input"
    r = _post(server, "/v1/embeddings", {"model": "tiny-bert", "input": "x", "dimensions": 4096})
    assert r.status_code == 400 and _error(r)["param"] == "dimensions"
    r = _post(server, "/v1/rerank", {"model": "tiny-rerank", "query": "q", "documents": []})
    assert r.status_code == 400 and _error(r)["param"] == "documents"


def test_request_size_limit_is_413(start_server: Any, handlers: dict[str, Any]) -> None:
    from modelyard.runtime import options

    srv = start_server(
        {"tiny-bert": handlers["tiny-bert"]}, options.ServerSettings(max_request_bytes=1024, warmup=False)
    )
    r = _post(srv, "/v1/embeddings", {"model": "tiny-bert", "input": "x" * 5000})
    assert r.status_code == 413
    assert _error(r)["type"] == "invalid_request_error"


def test_unknown_path_is_an_openai_shaped_404(server: Any) -> None:
    r = requests.get(server.url + "/v1/nothing-here", timeout=10)
    assert r.status_code == 404
    _error(r)


def test_a_streamed_request_that_is_too_long_is_a_json_400_not_a_broken_stream(server: Any) -> None:
    body = {
        "model": "tiny-llama",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 99999,
        "stream": True,
    }
    r = _post(server, "/v1/chat/completions", body)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("application/json")
    assert _error(r)["param"] == "max_tokens"
