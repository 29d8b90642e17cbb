"""Finding ``model`` and ``stream`` in a body without decoding it all, and rewriting ``model``."""

from __future__ import annotations

import json

import pytest

from modelyard.gateway import body

PAD = "x" * body.SCAN_ABOVE


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
    ],
)
def test_large_bodies_are_scanned_at_their_top_level(
    obj: dict[str, object], model: str, stream: bool
) -> None:
    raw = _big(obj)
    parsed = body.parse(raw, "application/json")
    assert (parsed.model, parsed.stream) == (model, stream)
    assert parsed.model_span is not None and parsed.parsed is None  # not decoded whole


def test_rewrite_replaces_only_the_model_value() -> None:
    raw = b'{"pad": "' + PAD.encode() + b'",  "model" :  "llama" , "extra":1.50}'
    rewritten = body.parse(raw, "application/json").with_model('gpt-"4"')
    assert rewritten == raw.replace(b'"llama"', b'"gpt-\\"4\\""')
    assert json.loads(rewritten)["model"] == 'gpt-"4"'


def test_many_small_tokens_fall_back_to_decoding() -> None:
    raw = json.dumps({"input": [f"s{i}" for i in range(5000)], "model": "emb"}).encode()
    parsed = body.parse(raw, "application/json")
    assert parsed.model == "emb" and parsed.parsed is not None
    assert json.loads(parsed.with_model("other"))["model"] == "other"


@pytest.mark.parametrize("raw", [_big({"messages": []})[:-1] + b',"model": ', b"[" + b"1," * 10000 + b"1]"])
def test_broken_or_odd_large_bodies_are_refused(raw: bytes) -> None:
    with pytest.raises(body.BodyError):
        body.parse(raw, "application/json")


def test_small_bodies_are_decoded() -> None:
    parsed = body.parse(b'{"model": "m", "stream": true}', "application/json")
    assert (parsed.model, parsed.stream, parsed.parsed) == ("m", True, {"model": "m", "stream": True})
    with pytest.raises(body.BodyError, match="model"):
        body.parse(b'{"stream": true}', "application/json")


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
