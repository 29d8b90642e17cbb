"""Generations as OpenAI choices: the finish reason, and logprobs in the two shapes OpenAI uses.

Chat (``logprobs: true``, ``top_logprobs: k``)::

    "logprobs": {"content": [{"token": "Hi", "logprob": -0.3, "bytes": [72, 105],
                              "top_logprobs": [{"token": "Hi", "logprob": -0.3, "bytes": [...]}, ...]}],
                 "refusal": null}

Completions (legacy, ``logprobs: k``)::

    "logprobs": {"tokens": ["Hi"], "token_logprobs": [-0.3],
                 "top_logprobs": [{"Hi": -0.3, "Hello": -1.9}], "text_offset": [0]}

A token's ``bytes`` are its text's UTF-8 bytes, its text the tokenizer's decoding of that one
token (as vLLM does), so a token holding part of a character reads as U+FFFD. The legacy
``top_logprobs`` hold the ``k`` most likely tokens and the chosen one (keyed by text, so tokens
of the same text are one entry, the chosen token's logprob winning); ``text_offset`` counts the
characters of the tokens before it. A logprob below :data:`FLOOR` (``-inf`` in float32) is
reported as the floor, so the JSON stays numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelyard.runtime import protocols

FLOOR = -9999.0

Logprobs = Sequence[protocols.TokenLogprob] | None


def finish_reason(gen: protocols.ChatGeneration) -> str:
    return "length" if gen.finish_reason == "length" else "stop"


def _value(logprob: float) -> float:
    return logprob if logprob > FLOOR else FLOOR


def _token(text: str, logprob: float) -> dict[str, Any]:
    return {"token": text, "logprob": _value(logprob), "bytes": list(text.encode("utf-8"))}


def chat(logprobs: Logprobs) -> dict[str, Any] | None:
    """The chat shape of ``logprobs`` (None when the request did not ask for them)."""
    if logprobs is None:
        return None
    content = [
        {**_token(lp.token, lp.logprob), "top_logprobs": [_token(t, v) for t, v in lp.top]} for lp in logprobs
    ]
    return {"content": content, "refusal": None}


def legacy(logprobs: Logprobs, offset: int = 0) -> dict[str, Any] | None:
    """The completions shape of ``logprobs``, the first token at character ``offset``."""
    if logprobs is None:
        return None
    offsets = []
    for lp in logprobs:
        offsets.append(offset)
        offset += len(lp.token)
    return {
        "tokens": [lp.token for lp in logprobs],
        "token_logprobs": [_value(lp.logprob) for lp in logprobs],
        "top_logprobs": [
            {**{t: _value(v) for t, v in lp.top}, lp.token: _value(lp.logprob)} for lp in logprobs
        ],
        "text_offset": offsets,
    }


def legacy_end(logprobs: Logprobs, offset: int = 0) -> int:
    """The character offset after ``logprobs``' tokens (where the next streamed piece starts)."""
    return offset + sum(len(lp.token) for lp in logprobs or ())
