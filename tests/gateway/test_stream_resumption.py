"""A stream whose model server dies or stalls mid-answer goes on on another pod, as one stream.

Fake servers stream ``<name>-<i> `` pieces; the dying one breaks after two. The client must
see the first pod's pieces, then the second's, under one id, with one usage and one
``[DONE]``; the second pod must be asked to continue the text already sent.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from kit import metric
from modelyard.gateway import discovery


def _post(url: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{url}/v1{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.status, response.read()


def _chunks(raw: bytes) -> tuple[list[dict[str, Any]], list[bytes]]:
    events = [e for e in raw.split(b"\n\n") if e]
    assert all(e.startswith(b"data: ") for e in events), events
    return [json.loads(e[6:]) for e in events if e != b"data: [DONE]"], events


def _text(chunks: list[dict[str, Any]]) -> str:
    out = []
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            out.append((choice.get("delta") or {}).get("content") or choice.get("text") or "")
    return "".join(out)


def _gateway(
    harness: Any, make_table: Any, make_pods: Any, first: Any, **settings: Any
) -> tuple[str, Any, Any]:
    second = harness.fake("good")
    source = discovery.StaticDiscovery(
        make_table(
            make_pods("ns/a", "llama", first, weight=1000), make_pods("ns/b", "llama", second, weight=1)
        )
    )
    url, app = harness.gateway(source, **settings)
    return url, app, second


def test_a_chat_stream_broken_mid_answer_continues_on_another_pod(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    dying = harness.fake("dying")
    dying.mode = "die"
    url, _, good = _gateway(harness, make_table, make_pods, dying)
    body = {
        "model": "llama",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 10,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    status, raw = _post(url, "/chat/completions", body)
    assert status == 200
    chunks, events = _chunks(raw)
    assert _text(chunks) == "dying-0 dying-1 good-0 good-1 good-2 "  # no gap, nothing twice
    assert events.count(b"data: [DONE]") == 1 and events[-1] == b"data: [DONE]"
    assert not any("error" in c for c in chunks)
    assert {(c["id"], c["created"], c["model"]) for c in chunks} == {("chatcmpl-1", 1, "llama")}
    usage = [c["usage"] for c in chunks if c.get("usage")]
    # the continuation counted 3 prompt tokens for a prompt that held the 2 pieces sent before
    assert usage == [{"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6}]

    sent = good.requests[0]["body"]
    assert sent["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "dying-0 dying-1 "},
    ]
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False
    assert sent["max_tokens"] == 8 and sent["stream"] is True
    _, exposition = _get_metrics(url)
    assert metric(exposition, "modelyard_gateway_stream_resumptions_total", outcome="resumed") == 1


def _get_metrics(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return response.status, response.read().decode()


def test_a_completion_stream_continues_its_prompt(harness: Any, make_table: Any, make_pods: Any) -> None:
    dying = harness.fake("dying")
    dying.mode = "die"
    url, _, good = _gateway(harness, make_table, make_pods, dying)
    body = {"model": "llama", "prompt": "once upon", "max_tokens": 5, "min_tokens": 3, "stream": True}
    status, raw = _post(url, "/completions", body)
    assert status == 200
    chunks, events = _chunks(raw)
    assert _text(chunks) == "dying-0 dying-1 good-0 good-1 good-2 "
    assert events.count(b"data: [DONE]") == 1
    sent = good.requests[0]["body"]
    assert sent["prompt"] == "once upondying-0 dying-1 "
    assert sent["max_tokens"] == 3 and sent["min_tokens"] == 1
    assert "messages" not in sent and "continue_final_message" not in sent


def test_a_stalled_stream_is_resumed_after_the_stall_timeout(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    stalled = harness.fake("stalled")
    stalled.mode = "stall"
    url, _, good = _gateway(
        harness, make_table, make_pods, stalled, stream_stall_timeout=0.3, attempt_timeout=10
    )
    body = {"model": "llama", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    _, raw = _post(url, "/chat/completions", body)
    chunks, events = _chunks(raw)
    assert _text(chunks) == "stalled-0 stalled-1 good-0 good-1 good-2 "
    assert events[-1] == b"data: [DONE]"
    assert "max_tokens" not in good.requests[0]["body"]  # none asked, none invented


def test_a_stream_with_n_above_one_is_not_resumed(harness: Any, make_table: Any, make_pods: Any) -> None:
    dying = harness.fake("dying")
    dying.mode = "die"
    url, _, good = _gateway(harness, make_table, make_pods, dying)
    body = {"model": "llama", "messages": [{"role": "user", "content": "hi"}], "n": 2, "stream": True}
    _, raw = _post(url, "/chat/completions", body)
    chunks, events = _chunks(raw)
    assert chunks[-1]["error"]["code"] == "upstream_interrupted" and events[-1] == b"data: [DONE]"
    assert good.requests == []
    _, exposition = _get_metrics(url)
    assert metric(exposition, "modelyard_gateway_stream_resumptions_total", outcome="unsupported") == 1


def test_a_plain_answer_cut_mid_body_is_retried(harness: Any, make_table: Any, make_pods: Any) -> None:
    dying = harness.fake("dying")
    dying.mode = "die"
    url, _, good = _gateway(harness, make_table, make_pods, dying)
    status, raw = _post(
        url, "/chat/completions", {"model": "llama", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello from good"
    assert len(dying.requests) == 1 and len(good.requests) == 1
    assert "continue_final_message" not in good.requests[0]["body"]  # the same request again


def test_a_stream_that_breaks_on_every_attempt_ends_with_the_error_event(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    dying = harness.fake("dying")
    dying.mode = "die"
    url, _ = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", dying))))
    body = {"model": "llama", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    _, raw = _post(url, "/chat/completions", body)
    chunks, events = _chunks(raw)
    assert chunks[-1]["error"]["code"] == "upstream_interrupted" and events[-1] == b"data: [DONE]"
    assert _text(chunks[:-1]) == "dying-0 dying-1 " * 3  # the first attempt and two retries
    assert [r["body"]["messages"][-1]["content"] for r in dying.requests[1:]] == [
        "dying-0 dying-1 ",
        "dying-0 dying-1 dying-0 dying-1 ",
    ]
    _, exposition = _get_metrics(url)
    assert metric(exposition, "modelyard_gateway_stream_resumptions_total", outcome="failed") == 1
