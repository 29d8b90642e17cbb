"""Server-sent events, relayed whole: a splitter, the gateway's own events, usage spotting.

The relay writes complete events only (text up to a blank line), so a failure mid-stream
never leaves the client with half a line; it then ends the stream with an OpenAI error event
and ``data: [DONE]``. Usage is read from the last event carrying a ``usage`` object (sent by
OpenAI-compatible servers with ``stream_options.include_usage``; in a Responses API stream, the
``response`` of ``response.completed``), its ``input_tokens``/``output_tokens`` read as prompt
and completion tokens. An event is held until its
blank line arrives, at most ``--max-event-bytes`` of it: a model server that sends more without
ending the event fails the stream (:class:`EventTooLarge`). The splitter looks at each byte a
bounded number of times, however small the pieces an event arrives in.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from modelyard.api import openai

KEEPALIVE = b": keepalive\n\n"
DONE = b"data: [DONE]\n\n"
HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class EventTooLarge(Exception):
    """A model server sent more than ``limit`` bytes of one event without ending it."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the model server sent an event larger than {limit} bytes (--max-event-bytes)")
        self.limit = limit


class EventSplitter:
    """Feed bytes, get back the complete events (each ending with its blank line)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._cr = False
        """The last piece ended with a ``\\r`` held back (it may start a ``\\r\\n``)."""

    def feed(self, chunk: bytes) -> bytes:
        """The complete events now available, concatenated (maybe empty).

        Raises :class:`EventTooLarge` when the unfinished event outgrows the limit."""
        if self._cr:
            chunk = b"\r" + chunk
            self._cr = False
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                chunk, self._cr = chunk[:-1], True
            chunk = chunk.replace(b"\r\n", b"\n")
        buffer = self._buffer
        if not buffer:  # the usual case: nothing held, the piece ends with whole events
            cut = chunk.rfind(b"\n\n")
            if cut != -1 and cut + 2 == len(chunk):
                return chunk
            buffer += chunk[cut + 2 :] if cut != -1 else chunk
            self._check()
            return chunk[: cut + 2] if cut != -1 else b""
        seen = len(buffer) - 1  # a blank line may start at the last byte held
        buffer += chunk
        cut = buffer.rfind(b"\n\n", seen)
        if cut == -1:
            self._check()
            return b""
        events = bytes(buffer[: cut + 2])
        del buffer[: cut + 2]
        self._check()
        return events

    def _check(self) -> None:
        if len(self._buffer) > self.limit:
            self._buffer.clear()
            raise EventTooLarge(self.limit)

    @property
    def pending(self) -> bytes:
        """An unterminated event left over (dropped when the stream fails)."""
        return bytes(self._buffer)


def error_event(status: int, message: str, code: str | None = None) -> bytes:
    body = openai.error_body(status, message, code=code)
    return b"data: " + json.dumps(body).encode() + b"\n\n" + DONE


class _Usage(msgspec.Struct):
    """An event's ``usage``, or its ``response`` (a Responses API event, whose usage is inside
    it); any other field is skipped, not decoded."""

    usage: Any = None
    response: Any = None


_USAGE = msgspec.json.Decoder(_Usage)
_JSON = json.JSONDecoder()
_OBJECT = msgspec.json.Decoder(dict)


def find_usage(events: bytes) -> dict[str, Any] | None:
    """The ``usage`` object of the last event in ``events`` that has a non-null one."""
    index = events.rfind(b'"usage"')
    while index != -1:
        start = events.rfind(b"data:", 0, index)
        end = events.find(b"\n", index)
        if start != -1:
            try:
                decoded = _USAGE.decode(events[start + 5 : end if end != -1 else None])
            except msgspec.DecodeError:  # not JSON, or not an object
                decoded = None
            usage = None if decoded is None else decoded.usage
            if decoded is not None and usage is None and isinstance(decoded.response, dict):
                usage = decoded.response.get("usage")  # a Responses API event
            if isinstance(usage, dict):
                return counted(usage)
        index = events.rfind(b'"usage"', 0, max(start, 0))
    return None


def for_client(events: bytes, hide_usage: bool) -> bytes:
    """``events`` less the usage-only chunks (``"choices": []`` and a ``usage`` object) when
    ``hide_usage``: the gateway asked for them, the client did not (:mod:`~.ratelimit`)."""
    if not hide_usage or b'"usage"' not in events:
        return events
    kept: list[bytes] = []
    for event in events.split(b"\n\n"):
        if b'"usage"' in event and event.startswith(b"data:"):
            try:
                chunk = json.loads(event[5:])
            except ValueError:
                chunk = None
            if isinstance(chunk, dict) and not chunk.get("choices") and isinstance(chunk.get("usage"), dict):
                continue
        kept.append(event)
    return b"\n\n".join(kept)


def find_json_usage(body: bytes) -> dict[str, Any] | None:
    """The top-level ``usage`` object of a JSON response, without decoding the rest of it."""
    index = body.rfind(b'"usage"')
    if index == -1:
        return None
    start = body.find(b"{", index)
    if start == -1:
        return None
    # A usage without objects inside ends at the first "}": msgspec reads just that. Anything
    # it cannot read (a nested object, so that text is cut short; bytes not UTF-8; NaN) goes
    # to the stdlib's reader, which finds where the object ends: the same object either way,
    # as an object that is valid JSON ends exactly at its closing brace.
    end = body.find(b"}", start)
    try:
        usage = _OBJECT.decode(body[start : end + 1]) if end != -1 else None
    except msgspec.DecodeError:
        usage = None
    if usage is None:
        try:
            usage, _ = _JSON.raw_decode(body[start:].decode(errors="replace"))
        except ValueError:
            return None
    return counted(usage) if isinstance(usage, dict) else None


def counted(usage: dict[str, Any]) -> dict[str, Any]:
    """``usage`` with ``prompt_tokens``/``completion_tokens``, taken from the Responses API's
    ``input_tokens``/``output_tokens`` when it has only those."""
    if "prompt_tokens" in usage or "input_tokens" not in usage:
        return usage
    return {
        **usage,
        "prompt_tokens": usage.get("input_tokens"),
        "completion_tokens": usage.get("output_tokens"),
    }
