"""The OpenAI surface through the gateway, with the official client: bytes pass untouched."""

from __future__ import annotations

import io
import json
import urllib.request
from typing import Any

import openai
import pytest

from modelyard.gateway import discovery


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10)


@pytest.fixture()
def setup(harness: Any, make_table: Any, make_pods: Any) -> tuple[Any, Any]:
    fake = harness.fake("pod-a")
    source = discovery.StaticDiscovery(make_table(make_pods("ns/llama", "llama", fake)))
    url, _ = harness.gateway(source)
    return fake, url


def test_chat_completion_relayed_with_unknown_fields_untouched(setup: tuple[Any, Any]) -> None:
    fake, url = setup
    reply = _client(url).chat.completions.create(
        model="llama",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"top_k": 7, "guided_json": {"type": "object"}},
    )
    assert reply.choices[0].message.content == "hello from pod-a"
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["top_k"] == 7 and sent["body"]["guided_json"] == {"type": "object"}


def test_original_bytes_are_forwarded(setup: tuple[Any, Any]) -> None:
    fake, url = setup
    raw = b'{"model":"llama",  "messages":[{"role":"user","content":"x"}],"zzz":1.50}'
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", data=raw, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert fake.requests[-1]["raw"] == raw


def test_streaming_chat_relayed_chunk_by_chunk(setup: tuple[Any, Any]) -> None:
    fake, url = setup
    fake.chunks = 4
    stream = _client(url).chat.completions.create(
        model="llama",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "pod-a-0 pod-a-1 pod-a-2 pod-a-3 "
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


def test_streaming_headers_disable_buffering(setup: tuple[Any, Any]) -> None:
    _, url = setup
    raw = json.dumps({"model": "llama", "messages": [{"role": "user", "content": "x"}], "stream": True})
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", data=raw.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        assert response.headers.get("Content-Length") is None
        body = response.read()
    assert body.endswith(b"data: [DONE]\n\n")


def test_completions_embeddings_and_rerank(setup: tuple[Any, Any]) -> None:
    fake, url = setup
    client = _client(url)
    assert client.completions.create(model="llama", prompt="x").model == "llama"
    embedding = client.embeddings.create(model="llama", input="hello")
    assert embedding.data[0].embedding == [0.1, 0.2]
    request = urllib.request.Request(
        f"{url}/v1/rerank",
        data=json.dumps({"model": "llama", "query": "q", "documents": ["a", "b"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["results"][0]["index"] == 0
    assert [r["path"] for r in fake.requests] == ["/v1/completions", "/v1/embeddings", "/v1/rerank"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_audio_transcription_routes_by_the_form_model(setup: tuple[Any, Any]) -> None:
    fake, url = setup
    audio = io.BytesIO(b"RIFF" + bytes(5000))
    audio.name = "clip.wav"
    result = _client(url).audio.transcriptions.create(model="llama", file=audio)
    assert result.text == "pod-a heard 5004 bytes"
    translated = _client(url).audio.translations.create(model="llama", file=("a.wav", b"xyz"))
    assert translated.text == "pod-a heard 3 bytes"
    assert fake.requests[-1]["path"] == "/v1/audio/translations"


def test_models_lists_served_names_with_a_ready_endpoint(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    fake = harness.fake("pod-a")
    source = discovery.StaticDiscovery(
        make_table(
            make_pods("ns/a", "ready-model", fake),
            make_pods("ns/b", "not-ready", fake, ready=False),
            make_pods("ns/c", "no-weight", fake, weight=0),
        )
    )
    url, _ = harness.gateway(source)
    client = _client(url)
    assert [m.id for m in client.models.list()] == ["ready-model"]
    assert client.models.retrieve("ready-model").id == "ready-model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("not-ready")


def test_unknown_model_is_404_listing_available(setup: tuple[Any, Any]) -> None:
    _, url = setup
    with pytest.raises(openai.NotFoundError) as caught:
        _client(url).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["message"] == "model 'nope' not found; available: llama"  # type: ignore[index]
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_model_without_ready_endpoint_is_503(harness: Any, make_table: Any, make_pods: Any) -> None:
    fake = harness.fake("pod-a")
    source = discovery.StaticDiscovery(make_table(make_pods("ns/a", "cold", fake, ready=False)))
    url, _ = harness.gateway(source)
    with pytest.raises(openai.InternalServerError) as caught:
        _client(url).chat.completions.create(model="cold", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 503
    assert "no ready endpoint" in caught.value.body["message"]  # type: ignore[index]


def test_client_errors_are_relayed_not_retried(setup: tuple[Any, Any]) -> None:
    fake, url = setup
    fake.mode = "bad_request"
    with pytest.raises(openai.BadRequestError) as caught:
        _client(url).chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["message"] == "bad temperature"  # type: ignore[index]
    assert len(fake.requests) == 1


def test_invalid_json_is_400(setup: tuple[Any, Any]) -> None:
    _, url = setup
    request = urllib.request.Request(f"{url}/v1/chat/completions", data=b"{nope", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["error"]["type"] == "invalid_request_error"
