"""Reading just enough of a request body to route it, and rewriting the model when needed.

The gateway forwards the client's original bytes, so fields it does not know reach the
model server untouched. It parses a JSON body once, only to learn ``model`` and ``stream``;
a multipart body (audio) is scanned for its ``model`` part without copying the file. The
body is re-serialised only when the model name must change (an upstream rewrite or a
fallback model).
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
    """The decoded JSON object (None for multipart)."""
    boundary: bytes | None = None

    def with_model(self, model: str) -> bytes:
        """The body with ``model`` replaced; the original bytes when it is unchanged."""
        if model == self.model:
            return self.raw
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
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BodyError("the request body must be a JSON object")
    model = parsed.get("model")
    if not isinstance(model, str) or not model:
        raise BodyError("you must provide a model parameter", "model")
    return RequestBody(raw, content_type or "application/json", model, parsed.get("stream") is True, parsed)


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
