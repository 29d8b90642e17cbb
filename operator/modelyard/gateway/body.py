"""Reading just enough of a request body to route it, and rewriting the model when needed.

The gateway forwards the client's original bytes, so fields it does not know reach the
model server untouched. It reads a JSON body once, only to learn ``model`` and ``stream``
(and where ``messages``, ``prompt`` and ``user`` are, which prefix-aware routing decodes on
demand: :meth:`RequestBody.prompt_and_user`), with msgspec: a strict, linear parser that
validates the whole body but skips every other field without building Python objects for it.
So a body costs the gateway its bytes and a pass over them (about 2 ms per MiB of dense
``[[],[],...]``, far less for a long prompt), never memory or time that grows with how many
values it holds; one nested deeper than about 1000 levels is refused (:data:`MAX_DEPTH`). A
multipart body (audio) is scanned for its ``model`` part without copying the file. When the
model name must change (an upstream rewrite or a fallback model) only the model value is
replaced.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import msgspec


class BodyError(ValueError):
    """The body cannot be routed; the message is safe to show to the client."""

    def __init__(self, message: str, param: str | None = None, limit: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.limit = limit
        """The bound the body broke (see :mod:`modelyard.gateway.limits`), if that is why."""


@dataclasses.dataclass(slots=True)
class RequestBody:
    """The original bytes and what routing needs from them."""

    raw: bytes
    content_type: str
    model: str
    stream: bool = False
    boundary: bytes | None = None
    """The multipart boundary, for a multipart body."""
    model_json: bytes = b""
    """The JSON text of ``model`` as it is in ``raw``, for a JSON body."""
    fields: _Routing | None = None
    """Where the fields prefix-aware routing reads are in ``raw`` (found by the same pass that
    found ``model``), for a JSON body."""

    def with_model(self, model: str) -> bytes:
        """The body with ``model`` replaced; the original bytes when it is unchanged.

        Raises :class:`BodyError` for a body whose top-level ``model`` cannot be found by its
        key (written with escapes, or hidden among more than ``_MAX_MODEL_KEYS`` keys named so).
        """
        if model == self.model:
            return self.raw
        if self.boundary is not None:
            return _rewrite_multipart_model(self.raw, self.boundary, model)
        start, end = _model_span(self.raw, self.model_json)
        return self.raw[:start] + msgspec.json.encode(model) + self.raw[end:]

    def prompt_and_user(self, chars: int) -> tuple[str, str | None]:
        """The first ``chars`` characters of the rendered prompt and the OpenAI ``user`` field,
        for prefix-aware routing (:mod:`modelyard.gateway.prefixhash`). Read only on demand.

        The prompt is the chat messages' contents in order (the text parts of a list content),
        each followed by a newline, or a completion's ``prompt`` (strings joined, token ids
        written out). A body where they are not where OpenAI puts them gives ``""``: it is
        routed by the empty prefix, never refused here (the model server judges the body).
        """
        found = self.fields
        if found is None:  # multipart
            return "", None
        user = _decode_or(_STRING, found.user, None)
        return _rendered(found, chars), user


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
        return RequestBody(raw, content_type, model, stream, boundary=boundary)
    return _parse_json(raw, content_type or "application/json")


MAX_DEPTH = 900
"""JSON nested this deep is always parsed; deeper is refused where the parser meets the
interpreter's recursion limit (about 1000 levels on Python 3.11, less the gateway's own call
stack). A fixed property of the parser, not a setting: a stack frame per level is all it costs."""
_ABSENT = msgspec.Raw(b"")
_TRUE = msgspec.Raw(b"true")


class _Routing(msgspec.Struct):
    """The fields routing needs, kept as their JSON text (views of the body, decoded only when
    needed: the last three for prefix-aware routing); every other field is skipped."""

    model: msgspec.Raw = _ABSENT
    stream: msgspec.Raw = _ABSENT
    messages: msgspec.Raw = _ABSENT
    prompt: msgspec.Raw = _ABSENT
    user: msgspec.Raw = _ABSENT


_ROUTING = msgspec.json.Decoder(_Routing)
_STRING = msgspec.json.Decoder(str)


class _Message(msgspec.Struct):
    content: msgspec.Raw = _ABSENT


class _Part(msgspec.Struct):
    text: str | None = None


_MESSAGES = msgspec.json.Decoder(list[_Message])
_CONTENT = msgspec.json.Decoder(str | list[_Part] | None)
_PROMPT = msgspec.json.Decoder(str | list[str | int | list[int]])


def _decode_or(decoder: msgspec.json.Decoder[Any], raw: msgspec.Raw, default: Any) -> Any:
    if raw is _ABSENT:
        return default
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError:  # ValidationError too: a field of another type has no text
        return default


def _rendered(found: _Routing, chars: int) -> str:
    pieces: list[str] = []
    size = 0
    if found.messages is not _ABSENT:
        for message in _decode_or(_MESSAGES, found.messages, []):
            content = _decode_or(_CONTENT, message.content, None)
            if isinstance(content, list):
                content = "".join(part.text for part in content if part.text)
            pieces.append(f"{content or ''}\n")
            size += len(pieces[-1])
            if size >= chars:
                break
    else:
        prompt = _decode_or(_PROMPT, found.prompt, "")
        pieces = [prompt] if isinstance(prompt, str) else [f"{p}\n" for p in prompt]
    return "".join(pieces)[:chars]


def _parse_json(raw: bytes, content_type: str) -> RequestBody:
    try:
        found = _ROUTING.decode(raw)
    except msgspec.ValidationError:  # both fields are raw text: only the top level can be wrong
        raise BodyError("the request body must be a JSON object") from None
    except msgspec.DecodeError as exc:  # strict: invalid UTF-8 and lone surrogates are refused too
        raise BodyError(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        message = "the request body nests JSON deeper than the gateway's limit (json_depth: ~1000 levels)"
        raise BodyError(message, limit="json_depth") from None
    try:
        model = _STRING.decode(found.model) if found.model is not _ABSENT else ""
    except msgspec.ValidationError:  # not a string
        model = ""
    except msgspec.DecodeError as exc:  # skipped fields are not checked for UTF-8; the model is
        raise BodyError(f"the request body is not valid JSON: {exc}", "model") from None
    if not model:
        raise BodyError("you must provide a model parameter", "model")
    stream = found.stream == _TRUE
    return RequestBody(raw, content_type, model, stream, model_json=bytes(found.model), fields=found)


_MODEL_KEY = re.compile(rb'(?<=[{,\s])"model"\s*:\s*')
_MAX_MODEL_KEYS = 64


def _model_span(raw: bytes, model_json: bytes) -> tuple[int, int]:
    """Where the top-level ``model`` value is in a body already parsed by :func:`_parse_json`.

    Every key named ``model`` whose value has the same text is a candidate (in valid JSON a
    quote after ``{``, ``,`` or a space, followed by ``model"`` and a colon, opens a key, never
    the inside of a string). One candidate is the answer; among several (a nested
    ``"model": "x"`` too), each gets a numbered stand-in value and the parser says which one
    the top level holds: one more linear pass, however the body is built.
    """
    starts: list[int] = []
    for count, match in enumerate(_MODEL_KEY.finditer(raw)):
        if count >= _MAX_MODEL_KEYS:
            raise BodyError(f"cannot rewrite the model of a body with over {_MAX_MODEL_KEYS} 'model' keys")
        if raw.startswith(model_json, match.end()):
            starts.append(match.end())
    if len(starts) > 1:
        pieces, last = [], 0
        for index, start in enumerate(starts):
            pieces += [raw[last:start], b'"\\u0000%d"' % index]
            last = start + len(model_json)
        probe = _ROUTING.decode(b"".join([*pieces, raw[last:]]))
        starts = [starts[int(_STRING.decode(probe.model)[1:])]]
    if not starts:
        raise BodyError('cannot rewrite the model of this body: write its key as plain "model"')
    return starts[0], starts[0] + len(model_json)


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
        doc = msgspec.json.decode(payload)
    except msgspec.DecodeError:  # scanned at its top level only: the model server will refuse it
        return payload, True
    if not isinstance(doc, dict):
        return payload, True
    options = doc.get("stream_options")
    options = options if isinstance(options, dict) else {}
    if options.get("include_usage") is True:
        return payload, True
    doc["stream_options"] = {**options, "include_usage": True}
    return msgspec.json.encode(doc), False


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
