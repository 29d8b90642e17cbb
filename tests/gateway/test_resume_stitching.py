"""The pure part of stream resumption: what a :class:`resume.Tracker` makes of the events it
saw, the continuation it asks for, and how it stitches the continuation's events."""

from __future__ import annotations

import json
from typing import Any

from modelyard.gateway import resume


def _event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None, ident: str = "first") -> bytes:
    chunk: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk", "created": 7, "model": "m"}
    chunk["choices"] = choices
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _delta(content: str | None = None, finish: str | None = None, **more: Any) -> dict[str, Any]:
    delta = {"content": content, **more} if content is not None or more else {}
    return {"index": 0, "delta": delta, "finish_reason": finish}


def _tracker(body: dict[str, Any], kind: str = "/chat/completions") -> resume.Tracker:
    tracker = resume.Tracker.start(kind, json.dumps(body).encode())
    assert tracker is not None
    return tracker


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, "stream": True}


def test_only_chat_and_completion_streams_are_followed() -> None:
    assert resume.Tracker.start("/embeddings", b"{}") is None
    assert resume.Tracker.start("/completions", b"{}") is not None


def test_the_continuation_carries_the_text_so_far_and_the_budget_left() -> None:
    tracker = _tracker(CHAT)
    events = _event([_delta("", role="assistant")]) + _event([_delta("Hello")]) + _event([_delta(" world")])
    assert tracker.take(events) == events  # the first attempt's events go out untouched
    assert tracker.plan() == "resume"
    sent = json.loads(tracker.body_for("served-name"))
    assert sent["model"] == "served-name" and sent["max_tokens"] == 8
    assert sent["messages"][-1] == {"role": "assistant", "content": "Hello world"}
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False


def test_a_message_the_client_continued_gets_the_text_appended() -> None:
    body = {**CHAT, "messages": [*CHAT["messages"], {"role": "assistant", "content": "Once"}]}
    tracker = _tracker({**body, "continue_final_message": True, "add_generation_prompt": False})
    tracker.take(_event([_delta(" upon")]))
    assert tracker.plan() == "resume"
    sent = json.loads(tracker.body_for("m"))
    assert sent["messages"][-1] == {"role": "assistant", "content": "Once upon"}
    assert len(sent["messages"]) == 2


def test_continuation_events_are_stitched_into_the_first_stream() -> None:
    tracker = _tracker(CHAT)
    tracker.take(
        _event([_delta("", role="assistant")]) + _event([_delta("Hello")]) + _event([_delta(" big")])
    )
    assert tracker.plan() == "resume"
    second = (
        _event([_delta("", role="assistant")], ident="second")
        + _event([_delta(" world")], ident="second")
        + _event([_delta(None, "stop")], ident="second")
        + _event([], {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}, ident="second")
        + b"data: [DONE]\n\n"
    )
    out = [e for e in tracker.take(second).split(b"\n\n") if e]
    assert out[-1] == b"data: [DONE]"
    chunks = [json.loads(e[6:]) for e in out[:-1]]
    assert [c["id"] for c in chunks] == ["first"] * 3  # the opening role chunk is gone
    assert chunks[0]["choices"][0]["delta"] == {"content": " world"}
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[2]["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
    assert tracker.text == "Hello big world"


def test_a_second_break_continues_from_everything_sent() -> None:
    tracker = _tracker(CHAT)
    tracker.take(_event([_delta("a")]))
    assert tracker.plan() == "resume"
    tracker.take(_event([_delta("b")], ident="second"))
    assert tracker.plan() == "resume"
    sent = json.loads(tracker.body_for("m"))
    assert sent["messages"][-1]["content"] == "ab" and sent["max_tokens"] == 8


def test_a_completion_continues_its_prompt() -> None:
    tracker = _tracker({"model": "m", "prompt": ["Once"], "max_tokens": 4, "stream": True}, "/completions")
    tracker.take(_event([{"index": 0, "text": " upon", "finish_reason": None}]))
    assert tracker.plan() == "resume"
    sent = json.loads(tracker.body_for("m"))
    assert sent["prompt"] == ["Once upon"] and sent["max_tokens"] == 3 and "messages" not in sent


def test_what_cannot_be_continued_says_why() -> None:
    cases: list[tuple[dict[str, Any], bytes, str]] = [
        (CHAT, _event([_delta(None, tool_calls=[{"index": 0, "function": {"name": "f"}}])]), "tool calls"),
        (CHAT, _event([{**_delta("x"), "logprobs": {"content": []}}]), "logprobs"),
        ({**CHAT, "n": 2}, _event([_delta("x")]), "n > 1"),
        (CHAT, _event([{**_delta("x"), "index": 1}]), "n > 1"),
        ({**CHAT, "logprobs": True}, _event([_delta("x")]), "logprobs"),
        (CHAT, _event([_delta(None, reasoning_content="hmm")]), "reasoning deltas"),
    ]
    for body, events, why in cases:
        tracker = _tracker(body)
        tracker.take(events)
        assert (tracker.plan(), tracker.unsupported) == ("unsupported", why), (body, events)
    echo = _tracker({"model": "m", "prompt": "x", "echo": True, "stream": True}, "/completions")
    echo.take(_event([{"index": 0, "text": "x", "finish_reason": None}]))
    assert (echo.plan(), echo.unsupported) == ("unsupported", "echo")


def test_a_stream_that_had_finished_or_used_its_budget_is_closed_not_resumed() -> None:
    finished = _tracker(CHAT)
    finished.take(_event([_delta("x")]) + _event([_delta(None, "stop")]))
    assert finished.plan() == "done"

    spent = _tracker({**CHAT, "max_tokens": 2})
    spent.take(_event([_delta("a")]) + _event([_delta("b")]))
    assert spent.plan() == "length"
    closing = [e for e in spent.closing().split(b"\n\n") if e]
    assert closing[-1] == b"data: [DONE]"
    last = json.loads(closing[0][6:])
    assert last["id"] == "first" and last["choices"][0]["finish_reason"] == "length"
