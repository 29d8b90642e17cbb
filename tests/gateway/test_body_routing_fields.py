"""Finding ``model`` and ``stream`` in a body, bounded in depth and cost, and rewriting ``model``."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from modelyard.gateway import body

PAD = "x" * 10_000


def _big(obj: dict[str, object]) -> bytes:
    return json.dumps({"pad": PAD, **obj}).encode()


@pytest.mark.parametrize(
    "obj, model, stream",
    [
        ({"messages": [{"role": "user", "content": "hi"}], "model": "llama", "stream": True}, "llama", True),
        ({"model": "llama", "stream": False}, "llama", False),
        ({"model": "ünï/cödé:7b"}, "ünï/cödé:7b", False),
        ({"tools": [{"model": "inner", "stream": True}], "model": "outer"}, "outer", False),
        ({"content": 'say "model": "fake", \\"stream\\": true \\\\', "model": "real"}, "real", False),
        (
            {"response_format": {"json_schema": {"properties": {"model": {}}}}, "model": "m", "stream": True},
            "m",
            True,
        ),
        ({"n": 1, "x": None, "y": [1, 2.5e3, True], "model": "m", "z": {}}, "m", False),
        ({"model": "m", "stream": "yes"}, "m", False),
    ],
)
def test_model_and_stream_are_read_from_the_top_level(
    obj: dict[str, object], model: str, stream: bool
) -> None:
    for raw in (json.dumps(obj).encode(), _big(obj)):
        parsed = body.parse(raw, "application/json")
        assert (parsed.model, parsed.stream) == (model, stream)


def test_rewrite_replaces_only_the_model_value() -> None:
    raw = b'{"pad": "' + PAD.encode() + b'",  "model" :  "llama" , "extra":1.50}'
    rewritten = body.parse(raw, "application/json").with_model('gpt-"4"')
    assert rewritten == raw.replace(b'"llama"', b'"gpt-\\"4\\""')
    assert json.loads(rewritten)["model"] == 'gpt-"4"'


@pytest.mark.parametrize(
    "raw",
    [
        b'{"metadata": {"model": "llama"}, "x": "a, \\"model\\": \\"llama\\"", "model": "llama", "n": 1}',
        b'{"model": "llama", "tools": [{"model": "llama"}, {"model" : "llama"}]}',
        b'{"model": "other", "model": "llama", "m": {"model": "llama"}}',  # the last one counts
        json.dumps({"input": [f"s{i}" for i in range(5000)], "model": "llama"}).encode(),
    ],
)
def test_rewrite_finds_the_top_level_model_among_nested_ones(raw: bytes) -> None:
    rewritten = body.parse(raw, "application/json").with_model("other")
    assert json.loads(rewritten)["model"] == "other"
    assert json.loads(rewritten) == {**json.loads(raw), "model": "other"}


def test_a_model_key_written_with_escapes_cannot_be_rewritten_but_is_routed() -> None:
    parsed = body.parse(b'{"mod\\u0065l": "llama"}', "application/json")
    assert parsed.model == "llama"
    with pytest.raises(body.BodyError, match="plain"):
        parsed.with_model("other")


@pytest.mark.parametrize(
    "raw, message",
    [
        (_big({"messages": []})[:-1] + b',"model": ', "not valid JSON"),
        (b"[" + b"1," * 10000 + b"1]", "must be a JSON object"),
        (b'{"model": "m\xed\xa0\x80"}', "not valid JSON"),  # a surrogate in UTF-8: not UTF-8
        (b'{"model": "m"} {}', "not valid JSON"),
        (b'{"model": ["m"]}', "model parameter"),
        (b'{"stream": true}', "model parameter"),
    ],
)
def test_broken_or_odd_bodies_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(body.BodyError, match=message):
        body.parse(raw, "application/json")


def test_nesting_beyond_the_depth_limit_is_refused_naming_it() -> None:
    n = body.MAX_DEPTH - 1
    ok = b'{"model": "m", "x": ' + b"[" * n + b"]" * n + b"}"
    assert body.parse(ok, "application/json").model == "m"
    deep = b'{"model": "m", "x": ' + b"[" * 4_000_000 + b"]" * 4_000_000 + b"}"
    with pytest.raises(body.BodyError, match="json_depth: ~1000 levels") as caught:
        body.parse(deep, "application/json")
    assert caught.value.limit == "json_depth"


def test_a_body_of_many_values_costs_no_objects() -> None:
    wide = b'{"model": "m", "junk": [' + b"[]," * 2_000_000 + b"[]]}"  # 6 MiB, 2 million lists
    tracemalloc.start()
    try:
        assert body.parse(wide, "application/json").model == "m"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # json.loads built 2 million lists here (over 100 MiB)


def test_multipart_model_is_read_and_rewritten_without_touching_the_file() -> None:
    audio = bytes(range(256)) * 100
    raw = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + audio + b"\r\n"
        b'--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="stream"\r\n\r\ntrue\r\n--XyZ--\r\n'
    )
    parsed = body.parse(raw, "multipart/form-data; boundary=XyZ")
    assert (parsed.model, parsed.stream) == ("whisper", True)
    rewritten = parsed.with_model("whisper-large")
    assert rewritten == raw.replace(b"\r\n\r\nwhisper\r\n", b"\r\n\r\nwhisper-large\r\n")
