"""Server-sent events, relayed whole: a splitter, the gateway's own events, usage spotting.

The relay writes complete events only (text up to a blank line), so a failure mid-stream
never leaves the client with half a line; it then ends the stream with an OpenAI error event
and ``data: [DONE]``. Usage is read from the last event carrying a ``usage`` object (sent by
OpenAI-compatible servers with ``stream_options.include_usage``).
"""

from __future__ import annotations

import json
from typing import Any

from modelyard.api import openai

KEEPALIVE = b": keepalive\n\n"
DONE = b"data: [DONE]\n\n"
HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class EventSplitter:
    """Feed bytes, get back the complete events (each ending with its blank line)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        """The complete events now available, concatenated (maybe empty)."""
        data = self._buffer + chunk if self._buffer else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        cut = data.rfind(b"\n\n")
        if cut == -1:
            self._buffer = data
            return b""
        self._buffer = data[cut + 2 :]
        return data[: cut + 2]

    @property
    def pending(self) -> bytes:
        """An unterminated event left over (dropped when the stream fails)."""
        return self._buffer


def error_event(status: int, message: str, code: str | None = None) -> bytes:
    body = openai.error_body(status, message, code=code)
    return b"data: " + json.dumps(body).encode() + b"\n\n" + DONE


def find_usage(events: bytes) -> dict[str, Any] | None:
    """The ``usage`` object of the last event in ``events`` that has a non-null one."""
    index = events.rfind(b'"usage"')
    while index != -1:
        start = events.rfind(b"data:", 0, index)
        end = events.find(b"\n", index)
        if start != -1:
            try:
                event = json.loads(events[start + 5 : end if end != -1 else None])
            except ValueError:
                event = None
            if isinstance(event, dict) and isinstance(event.get("usage"), dict):
                usage: dict[str, Any] = event["usage"]
                return usage
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
    try:
        usage, _ = json.JSONDecoder().raw_decode(body[start:].decode(errors="replace"))
    except ValueError:
        return None
    return usage if isinstance(usage, dict) else None
