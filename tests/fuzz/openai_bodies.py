"""Strategies for OpenAI request bodies: a valid body with one field dropped, replaced by junk
or nested junk, unknown fields added, or the whole body replaced by something that is not a
JSON object (other JSON, invalid UTF-8, random bytes, nothing).

The fields come from the protocol models in :mod:`modelyard.api.openai`, so a field added
there is fuzzed too. :class:`Body` says which field was broken, so a test can check that a 400
names it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pydantic
from hypothesis import strategies as st

from modelyard.api import openai

ROUTES: dict[str, type[pydantic.BaseModel]] = {
    "/v1/chat/completions": openai.ChatCompletionRequest,
    "/v1/completions": openai.CompletionRequest,
    "/v1/embeddings": openai.EmbeddingRequest,
    "/v1/rerank": openai.RerankRequest,
}

NESTED = {
    "/v1/chat/completions": [
        ("messages", 0),
        ("messages", 0, "role"),
        ("messages", 0, "content"),
        ("messages", 0, "name"),
        ("stream_options", "include_usage"),
        ("response_format", "type"),
        ("response_format", "json_schema"),
    ],
    "/v1/completions": [("prompt", 0), ("stream_options", "include_usage")],
    "/v1/embeddings": [("input", 0)],
    "/v1/rerank": [("documents", 0), ("documents", 0, "text")],
}

NUMBERS = (
    st.integers(-(2**70), 2**70)
    | st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**30])
    | st.floats(allow_nan=True, allow_infinity=True)
)
EDGES = st.sampled_from(
    [0, 1, -1, 2, 3, 0.5, 1e-9, -0.0, 2**31, 2**63, 2**70, -(2**70), 10**400 // 10**399, True, False,
     "", "a", "0", [], [""], ["a", "b"], [1, 2], [[1]], {}, {"a": 1}, None, float("nan"), float("inf")]
)  # fmt: skip
"""Boundary values and plausible types: the values most likely to pass validation oddly."""
FIELD_EDGES = {
    "n": st.sampled_from([0, 1, 2, 8, 9, 2**31, -1, "2", 2.0, True, None]),
    "logprobs": st.sampled_from([True, False, 0, 1, 5, 6, 20, -1, "yes", 2.5, None]),
    "top_logprobs": st.sampled_from([0, 1, 5, 20, 21, -1, 1.5, "3", True, None]),
}
"""The bounds of the fields that ask for more than one answer's worth of work: ``n`` (the
runtime's ``--max-n`` is 8 by default), chat's ``top_logprobs`` (0..20, with ``logprobs``),
completions' ``logprobs`` (0..5)."""
LOGPROB_ROUTES = ("/v1/chat/completions", "/v1/completions")
SCALARS = st.none() | st.booleans() | NUMBERS | st.text(max_size=30)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@dataclasses.dataclass(frozen=True)
class Body:
    raw: bytes
    field: str | None
    """The top-level field at fault when the answer is a 400 (None: the body as a whole)."""
    how: str

    def __repr__(self) -> str:
        return f"Body({self.how}: {self.raw[:300]!r})"


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _put(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    node: Any = out
    for step in path[:-1]:
        if isinstance(step, int):
            if not isinstance(node, list) or not node:
                return out
            node = node[step]
        else:
            if not isinstance(node.get(step), dict | list):
                node[step] = {}
            node = node[step]
    last = path[-1]
    if isinstance(last, int):
        if isinstance(node, list) and node:
            node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    return out


def _padded(draw: st.DrawFn, body: Any) -> Any:
    """``body`` with an unknown field of 9-100 KB at a drawn position: large enough that the
    gateway routes it by scanning its top level rather than decoding it."""
    if not isinstance(body, dict):
        return body
    items = list(body.items())
    at = draw(st.integers(0, len(items)))
    filler = draw(st.sampled_from(["x", 'q\\"', "\u00e9", "{[,]}"])) * draw(st.integers(9000, 20000))
    items.insert(at, ("x_padding", filler))
    return dict(items)


@st.composite
def bodies(draw: st.DrawFn, route: str, valid: dict[str, Any], pad: bool = False) -> Body:
    """One bad (or odd) body for ``route``, made from ``valid``; ``pad`` makes it large."""

    def encode(value: Any) -> bytes:
        return _encode(_padded(draw, value) if pad else value)

    model = ROUTES[route]
    fields = sorted(model.model_fields)
    required = sorted(n for n, f in model.model_fields.items() if f.is_required())
    hows = ["junk", "junk", "junk", "nested", "drop", "extra", "whole"]
    how = draw(st.sampled_from([*hows, "choices"] if route in LOGPROB_ROUTES else hows))
    if how == "choices":  # several of them at once: any may be at fault
        picked: dict[str, Any] = {}
        for name in draw(st.lists(st.sampled_from(sorted(FIELD_EDGES)), min_size=2, max_size=3, unique=True)):
            picked[name] = draw(FIELD_EDGES[name])
        return Body(encode({**valid, **picked}), None, f"choices {picked!r}")
    if how == "drop":
        field = draw(st.sampled_from(required))
        body = {k: v for k, v in valid.items() if k != field}
        return Body(encode(body), field, f"without {field}")
    if how == "junk":
        field = draw(st.sampled_from(fields))
        value = draw(FIELD_EDGES[field] | EDGES | JUNK if field in FIELD_EDGES else EDGES | JUNK)
        return Body(encode({**valid, field: value}), field, f"{field}={value!r}")
    if how == "nested":
        path = draw(st.sampled_from(NESTED[route]))
        value = draw(EDGES | JUNK)
        body = _put(valid, path, value)
        return Body(encode(body), str(path[0]), f"{path}={value!r}")
    if how == "extra":
        names = st.text(min_size=1, max_size=12).filter(lambda k: k not in fields)
        extras = draw(st.dictionaries(names, JUNK, min_size=1, max_size=4))
        return Body(encode({**valid, **extras}), None, f"extra {sorted(extras)}")
    kind = draw(st.sampled_from(["json", "utf8", "bytes", "empty", "truncated"]))
    if kind == "json":
        value = draw(JUNK.filter(lambda v: not isinstance(v, dict)))
        return Body(encode(value), None, f"non-object JSON {value!r}")
    if kind == "utf8":
        text = encode(valid)
        cut = draw(st.integers(0, len(text)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        return Body(text[:cut] + bad + text[cut:], None, "invalid UTF-8")
    if kind == "bytes":
        return Body(draw(st.binary(min_size=1, max_size=200)), None, "random bytes")
    if kind == "truncated":
        text = encode(valid)
        return Body(text[: draw(st.integers(1, len(text) - 1))], None, "truncated JSON")
    return Body(b"", None, "empty body")
