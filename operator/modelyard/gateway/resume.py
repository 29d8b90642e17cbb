"""Stream resumption: a chat or completion stream that breaks mid-answer goes on elsewhere.

When the model server of a committed stream dies or stalls (:mod:`modelyard.gateway.relay`),
the proxy asks another target (the same model's retry chain, then its fallbacks) to continue
the same answer: the request again, plus the text the client has already received,

* chat: appended as ``{"role": "assistant", "content": <text>}`` with vLLM's
  ``continue_final_message: true, add_generation_prompt: false`` (appended to the last
  message instead when the client itself continued one);
* completions: appended to the prompt;

``max_tokens`` (``max_completion_tokens``, ``min_tokens``) less the tokens already streamed.
A :class:`Tracker` follows the stream to know that text, then stitches the continuation into
the one stream the client sees: the first attempt's ``id``, ``created`` and ``model`` in every
chunk, no second ``role`` delta, one ``usage`` summed over the attempts.

Tokens streamed are counted as one per chunk with text: a lower bound (a server may put
several tokens in one chunk), so the continuation may run a few tokens over the client's
``max_tokens`` but never stops short of it. The summed usage takes the continuation's
``prompt_tokens`` (which include the text streamed before the break) less that count, and
adds the count to its ``completion_tokens``: ``total_tokens`` is the continuation's own.

Not resumed (the stream ends with the error event as before): tool-call, function-call and
reasoning deltas, ``n > 1``, ``logprobs``, ``echo``, prompts that are not text, a body the
gateway cannot decode.

(A little over 300 lines: following, stitching and continuing a stream share one state.)
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from modelyard.gateway import upstream

KINDS = {"/chat/completions": "chat", "/completions": "completions"}
"""The routes whose streams can be resumed, by the kind of body they take."""


class Interrupted(upstream.AttemptFailed):
    """A committed stream broke and can be continued: the proxy tries the next target."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: Any = None
    function_call: Any = None
    reasoning_content: Any = None
    reasoning: Any = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    text: str | None = None
    finish_reason: str | None = None
    logprobs: Any = None


class _Chunk(msgspec.Struct):
    id: Any = None
    created: Any = None
    model: Any = None
    choices: list[_Choice] = []
    usage: dict[str, Any] | None = None


_CHUNK = msgspec.json.Decoder(_Chunk)
UNREAD_BYTES = 64 * 1024
"""Relayed events kept unparsed per stream, at most (then they are parsed and let go)."""
_DONE = b"[DONE]"
_LAST = b"\n\ndata: [DONE]\n\n"


def _data(event: bytes) -> bytes | None:
    """The data of one event (lines joined), None for a comment-only event."""
    if event.startswith(b"data: ") and b"\n" not in event:  # the usual one-line event
        return event[6:]
    lines = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


class Tracker:
    """What one stream has sent so far, and how to continue it after a break."""

    __slots__ = (
        "_held",
        "_unread",
        "before",
        "body",
        "created",
        "done",
        "finish",
        "id",
        "kind",
        "model",
        "resumed",
        "texts",
        "tokens",
        "unsupported",
    )

    def __init__(self, kind: str, body: bytes) -> None:
        self.kind = kind
        self.body = body
        """The client's request body, decoded only if the stream breaks."""
        self.texts: list[str] = []
        self.tokens = 0
        """Chunks with text seen: a lower bound of the tokens streamed."""
        self.before = 0
        """:attr:`tokens` at the last break: the continuation's usage adds them."""
        self.id: Any = None
        self.created: Any = None
        self.model: Any = None
        self.finish: str | None = None
        self.done = False
        """``data: [DONE]`` came: the stream is over."""
        self.resumed = 0
        """Breaks continued so far; after the first, events are rewritten (:meth:`take`)."""
        self.unsupported = ""
        """Why this stream cannot be continued, once something says so."""
        self._unread: list[bytes] = []
        """Events relayed but not parsed yet: read only when the stream breaks (:meth:`plan`), or
        when they pass :data:`UNREAD_BYTES`; until then :attr:`texts`, :attr:`tokens`,
        :attr:`id` and :attr:`finish` lag behind."""
        self._held = 0

    @classmethod
    def start(cls, suffix: str, body: bytes) -> Tracker | None:
        kind = KINDS.get(suffix)
        return cls(kind, body) if kind is not None else None

    @property
    def text(self) -> str:
        self._read()
        return "".join(self.texts)

    # -- following the stream ------------------------------------------------------------------

    def take(self, events: bytes) -> bytes:
        """Note what ``events`` carry; the events to send the client (rewritten after a break)."""
        if not self.resumed:  # the usual case: keep the bytes, parse them only if it breaks
            self._unread.append(events)
            self._held += len(events)
            if events.endswith(_LAST) or events == _LAST[2:]:  # where it usually is: last, alone
                self.done = True
            elif b"[DONE]" in events:
                self.done = self.done or any(_data(event) == _DONE for event in events.split(b"\n\n"))
            if self._held > UNREAD_BYTES:
                self._read()
            return events
        out: list[bytes] = []
        for event in events.split(b"\n\n"):
            if event:
                kept = self._stitch(event)
                if kept is not None:
                    out.append(kept + b"\n\n")
        return b"".join(out)

    def _read(self) -> None:
        """Parse the events kept unread (see :attr:`_unread`)."""
        unread, self._unread, self._held = self._unread, [], 0
        for events in unread:
            for event in events.split(b"\n\n"):
                self._see(event)

    def _see(self, event: bytes) -> _Chunk | None:
        data = _data(event)
        if data is None:
            return None
        if data == _DONE:
            self.done = True
            return None
        try:
            chunk = _CHUNK.decode(data)
        except msgspec.DecodeError:  # not JSON, or a chunk of another shape: nothing to continue
            self.unsupported = self.unsupported or "an event that is not a chunk"
            return None
        if self.id is None:
            self.id, self.created, self.model = chunk.id, chunk.created, chunk.model
        for choice in chunk.choices:
            self._choice(choice)
        return chunk

    def _choice(self, choice: _Choice) -> None:
        if choice.index != 0:
            self.unsupported = "n > 1"
        if choice.logprobs is not None:
            self.unsupported = "logprobs"
        text = choice.text
        delta = choice.delta
        if delta is not None:
            text = delta.content
            if delta.tool_calls or delta.function_call:
                self.unsupported = "tool calls"
            if delta.reasoning_content or delta.reasoning:
                self.unsupported = "reasoning deltas"
        if text:
            self.texts.append(text)
            self.tokens += 1
        if choice.finish_reason:
            self.finish = choice.finish_reason

    def _stitch(self, event: bytes) -> bytes | None:
        """A continuation's event as part of the first stream, or None to drop it."""
        chunk = self._see(event)
        if chunk is None:
            return event
        doc = json.loads(_data(event) or b"null")
        if self.id is not None:
            doc["id"] = self.id
        if self.created is not None:
            doc["created"] = self.created
        if self.model is not None:
            doc["model"] = self.model
        choices = doc.get("choices") or []
        kept = []
        for choice in choices:
            delta = choice.get("delta")
            if isinstance(delta, dict):
                delta.pop("role", None)
                if not any(value for value in delta.values()) and not choice.get("finish_reason"):
                    continue  # the continuation's opening "role" chunk: the client has one
            kept.append(choice)
        if choices and not kept and not isinstance(doc.get("usage"), dict):
            return None
        doc["choices"] = kept
        usage = doc.get("usage")
        if isinstance(usage, dict):
            doc["usage"] = self._summed(usage)
        return b"data: " + json.dumps(doc, ensure_ascii=False).encode()

    def _summed(self, usage: dict[str, Any]) -> dict[str, Any]:
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        summed = dict(usage)
        summed["prompt_tokens"] = max(0, prompt - self.before)
        summed["completion_tokens"] = completion + self.before
        summed["total_tokens"] = summed["prompt_tokens"] + summed["completion_tokens"]
        return summed

    # -- after a break ---------------------------------------------------------------------------

    def plan(self) -> str:
        """What to do now that the stream broke: ``done`` (only ``[DONE]`` was missing),
        ``length`` (every token asked for was streamed), ``resume``, or ``unsupported``
        (:attr:`unsupported` says why)."""
        self._read()
        if self.finish is not None or self.done:
            return "done"
        if not self.unsupported:
            self.unsupported = self._check_body()
        if self.unsupported:
            return "unsupported"
        if self._budget_left() == 0:
            return "length"
        self.before = self.tokens
        self.resumed += 1
        return "resume"

    def _request(self) -> dict[str, Any] | None:
        try:
            doc = msgspec.json.decode(self.body)
        except msgspec.DecodeError:
            return None
        return doc if isinstance(doc, dict) else None

    def _check_body(self) -> str:
        doc = self._request()
        if doc is None:
            return "a body the gateway cannot decode"
        if (doc.get("n") or 1) != 1 or (doc.get("best_of") or 1) != 1:
            return "n > 1"
        if doc.get("logprobs") or doc.get("top_logprobs"):
            return "logprobs"
        if self.kind == "completions":
            if doc.get("echo"):
                return "echo"
            prompt = doc.get("prompt")
            if not isinstance(prompt, str) and not (
                isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str)
            ):
                return "a prompt that is not one text"
        else:
            messages = doc.get("messages")
            if not isinstance(messages, list) or not messages:
                return "no messages"
            if doc.get("continue_final_message") and not isinstance(messages[-1].get("content"), str):
                return "a continued message that is not text"
        return ""

    def _budget_left(self) -> int | None:
        doc = self._request() or {}
        budget = doc.get("max_completion_tokens") or doc.get("max_tokens")
        if not isinstance(budget, int):
            return None
        return max(0, budget - self.tokens)

    def body_for(self, model: str) -> bytes:
        """The continuation's request body, for the served name ``model``."""
        doc = self._request()
        assert doc is not None  # plan() checked it
        doc["model"] = model
        for field in ("max_tokens", "max_completion_tokens"):
            if isinstance(doc.get(field), int):
                doc[field] = max(1, doc[field] - self.tokens)
        if isinstance(doc.get("min_tokens"), int):
            doc["min_tokens"] = max(0, doc["min_tokens"] - self.tokens)
        text = self.text
        if not text:
            return msgspec.json.encode(doc)
        if self.kind == "completions":
            prompt = doc["prompt"]
            doc["prompt"] = prompt + text if isinstance(prompt, str) else [prompt[0] + text]
        elif doc.get("continue_final_message"):
            last = dict(doc["messages"][-1])
            last["content"] += text
            doc["messages"] = [*doc["messages"][:-1], last]
        else:
            doc["messages"] = [*doc["messages"], {"role": "assistant", "content": text}]
            doc["continue_final_message"] = True
            doc["add_generation_prompt"] = False
        return msgspec.json.encode(doc)

    def closing(self) -> bytes:
        """The last events of a stream whose every token came before the break."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
        if self.kind == "chat":
            choice["delta"] = {}
            kind = "chat.completion.chunk"
        else:
            choice["text"] = ""
            kind = "text_completion"
        chunk: dict[str, Any] = {"id": self.id, "object": kind, "created": self.created, "model": self.model}
        chunk["choices"] = [choice]
        return b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
