"""The relay rule: ``/v1/responses`` and any /v1 path the gateway does not know reach the model
a JSON body names, through the same proxy as chat (keys, retries, weighted split, metrics,
streaming); such a path with no ``model`` is a 404 naming it; ``/v1/models`` stays the
gateway's own. And the fields the gateway does not know (``logprobs``, ``top_logprobs``, ``n``:
what a vLLM pod serves itself) reach the model server untouched."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
import requests

import kit
from modelyard.gateway import app as gateway_app
from modelyard.gateway import auth, discovery, sse

KEY = "sk-relay"


def _client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)


def _value(app: Any, name: str, **labels: str) -> float:
    return app[gateway_app.METRICS].registry.get_sample_value(name, labels) or 0.0


def _wait_counted(app: Any, n: int) -> None:
    """Until llama's answered requests count ``n``: a stream is counted when its handler returns,
    which may come just after the client read its end."""
    labels = {"model": "llama", "endpoint": "ns/llama", "code": "200"}
    kit.wait_for(lambda: _value(app, "modelyard_gateway_requests_total", **labels) == n, 10, f"{n} counted")


@pytest.fixture()
def setup(harness: Any, make_table: Any, make_pods: Any) -> tuple[Any, str, Any]:
    fake = harness.fake("pod-a")
    url, app = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/llama", "llama", fake))))
    return fake, url, app


def test_responses_api_with_the_openai_sdk_plain_and_streamed(setup: tuple[Any, str, Any]) -> None:
    fake, url, app = setup
    client = _client(url)
    reply = client.responses.create(model="llama", input="hi", instructions="be brief")
    assert reply.output_text == "hello from pod-a"
    assert fake.requests[-1]["path"] == "/v1/responses"
    assert fake.requests[-1]["body"]["instructions"] == "be brief"

    fake.chunks = 4
    events = list(client.responses.create(model="llama", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "pod-a-0 pod-a-1 pod-a-2 pod-a-3 "
    assert "stream_options" not in fake.requests[-1]["body"]  # only chat/completions are asked

    _wait_counted(app, 2)
    # usage read as OpenAI's Responses API writes it: input/output tokens, the stream's in response.completed
    assert _value(app, "modelyard_gateway_tokens_total", model="llama", kind="prompt") == 5 + 3
    assert _value(app, "modelyard_gateway_tokens_total", model="llama", kind="completion") == 7 + 4


def test_a_path_the_gateway_does_not_know_is_relayed_to_the_model_it_names(
    setup: tuple[Any, str, Any],
) -> None:
    fake, url, app = setup
    r = requests.post(f"{url}/v1/tokenize?add_special=1", json={"model": "llama", "prompt": "x"}, timeout=10)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hello from pod-a"
    assert fake.requests[-1]["path"] == "/v1/tokenize"
    r = requests.post(
        f"{url}/v1/some/new/thing", json={"model": "llama", "stream": True, "messages": []}, timeout=10
    )
    assert r.headers["Content-Type"].startswith("text/event-stream")
    assert r.text.endswith("data: [DONE]\n\n") and "pod-a-2" in r.text
    assert fake.requests[-1]["path"] == "/v1/some/new/thing"
    _wait_counted(app, 2)

    missing = requests.post(f"{url}/v1/some/new/thing", json={"model": "nope"}, timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    "raw", [b'{"prompt": "x"}', b'{"model": ""}', b'{"model": 3}', b"not json", b"[1]", b""]
)
def test_an_unknown_path_without_a_model_is_404_naming_the_path(
    setup: tuple[Any, str, Any], raw: bytes
) -> None:
    fake, url, _ = setup
    r = requests.post(
        f"{url}/v1/frobnicate", data=raw, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert r.status_code == 404
    error = r.json()["error"]
    assert "/v1/frobnicate" in error["message"] and error["code"] == "unknown_path"
    assert error["type"] == "not_found_error"
    assert fake.requests == []


def test_known_paths_keep_their_400_and_models_stays_the_gateways_own(setup: tuple[Any, str, Any]) -> None:
    fake, url, _ = setup
    r = requests.post(f"{url}/v1/responses", json={"input": "x"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    for path in ("/v1/models", "/v1/models/llama"):
        r = requests.post(f"{url}{path}", json={"model": "llama"}, timeout=10)
        assert r.status_code == 405, path
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert requests.get(f"{url}/v1/models", timeout=10).json()["data"][0]["id"] == "llama"
    assert fake.requests == []


def test_the_relay_applies_keys_retries_and_the_weighted_split(
    harness: Any, make_table: Any, make_pods: Any, key_table: Any
) -> None:
    broken, a, b = harness.fake("broken"), harness.fake("pod-a"), harness.fake("pod-b")
    broken.mode = "error"
    keys = key_table({"alice": KEY, "alice.models": "llama"})
    table = make_table(
        make_pods("ns/one", "llama", broken, a, weight=50),
        make_pods("ns/two", "llama", b, weight=50),
        make_pods("ns/other", "other", b),
    )
    url, _ = harness.gateway(discovery.StaticDiscovery(table, keys=keys), retry_attempts=3)

    assert requests.post(f"{url}/v1/anything", json={"model": "llama"}, timeout=10).status_code == 401
    denied = requests.post(
        f"{url}/v1/anything", json={"model": "other"}, headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    )
    assert denied.status_code == 403
    client = _client(url, KEY)
    answers = [client.responses.create(model="llama", input=f"q{i}").output_text for i in range(40)]
    assert set(answers) == {"hello from pod-a", "hello from pod-b"}  # the broken pod's 500s are retried
    served_by_b = answers.count("hello from pod-b")
    assert 8 <= served_by_b <= 32, served_by_b  # each endpoint half of the time
    assert all(r["path"] == "/v1/responses" for r in [*a.requests, *b.requests, *broken.requests])


def test_logprobs_top_logprobs_and_n_reach_the_model_server_untouched(setup: tuple[Any, str, Any]) -> None:
    """A vLLM pod serves these itself; the gateway forwards the bytes as they are."""
    fake, url, _ = setup
    client = _client(url)
    client.chat.completions.create(
        model="llama", messages=[{"role": "user", "content": "x"}], logprobs=True, top_logprobs=5, n=3
    )
    sent = fake.requests[-1]["body"]
    assert (sent["logprobs"], sent["top_logprobs"], sent["n"]) == (True, 5, 3)
    list(client.completions.create(model="llama", prompt="x", logprobs=2, n=2, stream=True))
    sent = fake.requests[-1]["body"]
    assert (sent["logprobs"], sent["n"], sent["stream"]) == (2, 2, True)
    raw = b'{"model":"llama","input":"x","top_logprobs":3,"include":["message.output_text.logprobs"]}'
    requests.post(f"{url}/v1/responses", data=raw, headers={"Content-Type": "application/json"}, timeout=10)
    assert fake.requests[-1]["raw"] == raw


def test_an_unknown_path_counts_against_a_keys_rpm(harness: Any, make_table: Any, make_pods: Any) -> None:
    fake = harness.fake("pod-a")
    keys = auth.KeyTable.from_data({"alice": KEY, "alice.rpm": "2"})
    url, _ = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", fake)), keys=keys)
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    codes = [
        requests.post(
            f"{url}/v1/x", data=json.dumps({"model": "llama"}), headers=headers, timeout=10
        ).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_usage_is_read_from_responses_events_and_objects() -> None:
    completed = {
        "type": "response.completed",
        "response": {"id": "r", "usage": {"input_tokens": 4, "output_tokens": 6}},
    }
    events = (
        b"event: response.output_text.delta\n"
        b'data: {"type": "response.output_text.delta", "delta": "usage"}\n\n'
        b"event: response.completed\ndata: " + json.dumps(completed).encode() + b"\n\n"
    )
    usage = sse.find_usage(events)
    assert usage is not None and (usage["prompt_tokens"], usage["completion_tokens"]) == (4, 6)
    body = json.dumps({"id": "r", "output": [], "usage": {"input_tokens": 2, "output_tokens": 3}}).encode()
    assert sse.find_json_usage(body) == {
        "input_tokens": 2,
        "output_tokens": 3,
        "prompt_tokens": 2,
        "completion_tokens": 3,
    }
    chat = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert sse.counted(chat) == chat
