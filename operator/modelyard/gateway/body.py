"""Reading just enough of a request body to route it, and rewriting the model when needed.

The gateway forwards the client's original bytes, so fields it does not know reach the
model server untouched. It reads a JSON body once, only to learn ``model`` and ``stream``:
a large body is walked at its top level only, jumping over string values with ``bytes.find``
(a megabyte prompt costs about as much as a short one); when that walk meets many small
tokens it gives up and ``json.loads`` the body instead. A multipart body (audio) is scanned
for its ``model`` part without copying the file. When the model name must change (an
upstream rewrite or a fallback model) only the model value is replaced.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any


class BodyError(ValueError):
    """The body cannot be routed; the message is safe to show to the client."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclasses.dataclass(slots=True)
class RequestBody:
    """The original bytes and what routing needs from them."""

    raw: bytes
    content_type: str
    model: str
    stream: bool = False
    parsed: dict[str, Any] | None = None
    """The decoded JSON object, when the body was decoded whole."""
    boundary: bytes | None = None
    """The multipart boundary, for a multipart body."""
    model_span: tuple[int, int] | None = None
    """Where the JSON value of ``model`` is in ``raw``, when the body was scanned."""

    def with_model(self, model: str) -> bytes:
        """The body with ``model`` replaced; the original bytes when it is unchanged."""
        if model == self.model:
            return self.raw
        if self.model_span is not None:
            start, end = self.model_span
            return self.raw[:start] + json.dumps(model, ensure_ascii=False).encode() + self.raw[end:]
        if self.parsed is not None:
            return json.dumps({**self.parsed, "model": model}, ensure_ascii=False).encode()
        assert self.boundary is not None
        return _rewrite_multipart_model(self.raw, self.boundary, model)


def parse(raw: bytes, content_type: str) -> RequestBody:
    """Find ``model`` (and ``stream``) in a JSON or multipart/form-data body."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        boundary = _boundary(content_type)
        fields = _multipart_fields(raw, boundary, {b"model", b"stream"})
        model = fields.get(b"model")
        if not model:
            raise BodyError("you must provide a model parameter", "model")
        stream = fields.get(b"stream", "").lower() in ("true", "1")
        return RequestBody(raw, content_type, model, stream, None, boundary)
    if len(raw) >= SCAN_ABOVE:
        scanned = _scan_json(raw, content_type or "application/json")
        if scanned is not None:
            return scanned
    try:
        # decode strictly: json.loads(bytes) lets invalid UTF-8 through as lone surrogates
        parsed = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BodyError("the request body must be a JSON object")
    model = parsed.get("model")
    if not isinstance(model, str) or not model:
        raise BodyError("you must provide a model parameter", "model")
    return RequestBody(raw, content_type or "application/json", model, parsed.get("stream") is True, parsed)


_ASK_USAGE = b'"stream_options":{"include_usage":true},'


def ask_stream_usage(payload: bytes) -> tuple[bytes, bool]:
    """A JSON body that asks for a stream's usage chunk, and whether it asked already.

    Without ``stream_options`` anywhere in the body the field is put in front of the others
    (no decoding); otherwise the body is decoded and ``include_usage`` set in its options.
    """
    if b'"stream_options"' not in payload:
        start = payload.index(b"{") + 1  # parse() found a JSON object
        return payload[:start] + _ASK_USAGE + payload[start:], False
    try:
        doc = json.loads(payload)
    except ValueError:  # scanned at its top level only: the model server will refuse it
        return payload, True
    if not isinstance(doc, dict):
        return payload, True
    options = doc.get("stream_options")
    options = options if isinstance(options, dict) else {}
    if options.get("include_usage") is True:
        return payload, True
    doc["stream_options"] = {**options, "include_usage": True}
    return json.dumps(doc, ensure_ascii=False).encode(), False


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NAME = re.compile(rb'name="([^"]*)"', re.IGNORECASE)


def _boundary(content_type: str) -> bytes:
    match = _BOUNDARY.search(content_type)
    if not match:
        raise BodyError("multipart/form-data without a boundary")
    return match.group(1).encode()


def _parts(raw: bytes, boundary: bytes) -> list[tuple[int, int, int]]:
    """(start of headers, start of content, end of content) for every part."""
    delimiter = b"--" + boundary
    parts: list[tuple[int, int, int]] = []
    pos = raw.find(delimiter)
    while pos != -1:
        start = pos + len(delimiter)
        if raw.startswith(b"--", start):
            break
        start = raw.find(b"\r\n", start) + 2
        headers_end = raw.find(b"\r\n\r\n", start)
        nxt = raw.find(b"\r\n" + delimiter, start)
        if headers_end == -1 or nxt == -1 or start == 1:
            raise BodyError("malformed multipart/form-data body")
        parts.append((start, headers_end + 4, nxt))
        pos = nxt + 2
    return parts


def _multipart_fields(raw: bytes, boundary: bytes, wanted: set[bytes]) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for head, content, end in _parts(raw, boundary):
        match = _NAME.search(raw, head, content)
        if match and match.group(1) in wanted and match.group(1) not in found:
            found[match.group(1)] = raw[content:end].decode(errors="replace").strip()
    return found


def _rewrite_multipart_model(raw: bytes, boundary: bytes, model: str) -> bytes:
    for head, content, end in _parts(raw, boundary):
        match = _NAME.search(raw, head, content)
        if match and match.group(1) == b"model":
            return raw[:content] + model.encode() + raw[end:]
    return raw


SCAN_ABOVE = 8192
"""Bodies at least this large are scanned rather than decoded."""
_TOKEN_BUDGET = 256
_STRUCTURE = re.compile(rb'["{}\[\]]')
_LITERAL_END = re.compile(rb"[,}\s]")
_SPACE = b" \t\r\n"


class _GiveUp(Exception):
    """Too many tokens (or something unusual): decode the body whole instead."""


class _Scanner:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.budget = _TOKEN_BUDGET

    def spend(self) -> None:
        self.budget -= 1
        if self.budget <= 0:
            raise _GiveUp()

    def space(self, i: int) -> int:
        raw = self.raw
        while i < len(raw) and raw[i] in _SPACE:
            i += 1
        if i >= len(raw):
            raise _GiveUp()
        return i

    def string_end(self, start: int) -> int:
        """The index after the string that opens at ``start``."""
        raw, i = self.raw, start + 1
        while True:
            j = raw.find(b'"', i)
            if j == -1:
                raise _GiveUp()
            k = j - 1
            while raw[k] == 0x5C:  # backslash
                k -= 1
            if (j - 1 - k) % 2 == 0:
                return j + 1
            self.spend()
            i = j + 1

    def container_end(self, start: int) -> int:
        depth, i = 0, start
        while True:
            match = _STRUCTURE.search(self.raw, i)
            if match is None:
                raise _GiveUp()
            at = match.start()
            char = self.raw[at]
            self.spend()
            if char == 0x22:  # "
                i = self.string_end(at)
                continue
            depth += 1 if char in b"{[" else -1
            i = at + 1
            if depth == 0:
                return i

    def top_level(self) -> dict[bytes, tuple[int, int]]:
        """Spans of the values of the top-level keys ``model`` and ``stream``."""
        raw = self.raw
        i = self.space(0)
        if raw[i] != 0x7B:  # {
            raise _GiveUp()
        i += 1
        found: dict[bytes, tuple[int, int]] = {}
        while True:
            i = self.space(i)
            char = raw[i]
            if char == 0x7D:  # }
                return found
            if char == 0x2C:  # ,
                i += 1
                continue
            if char != 0x22:
                raise _GiveUp()
            key_end = self.string_end(i)
            key = raw[i + 1 : key_end - 1]
            if b"\\" in key:
                raise _GiveUp()
            i = self.space(key_end)
            if raw[i] != 0x3A:  # :
                raise _GiveUp()
            start = i = self.space(i + 1)
            char = raw[i]
            if char == 0x22:
                i = self.string_end(i)
            elif char in b"{[":
                i = self.container_end(i)
            else:
                match = _LITERAL_END.search(raw, i)
                if match is None:
                    raise _GiveUp()
                i = match.start()
            if key in (b"model", b"stream"):
                found[key] = (start, i)
            self.spend()


def _scan_json(raw: bytes, content_type: str) -> RequestBody | None:
    """Route a large JSON body from its top level; None when it should be decoded whole."""
    try:
        spans = _Scanner(raw).top_level()
    except (_GiveUp, IndexError):
        return None
    if b"model" not in spans:
        return None
    try:
        model = json.loads(raw[slice(*spans[b"model"])].decode("utf-8"))
        stream = json.loads(raw[slice(*spans[b"stream"])]) if b"stream" in spans else False
    except ValueError:
        return None
    if not isinstance(model, str) or not model:
        return None
    return RequestBody(raw, content_type, model, stream is True, model_span=spans[b"model"])
