"""Sampling parameters as one value: built once from a request, handed to handlers whole.

:class:`SamplingParams` carries every setting that shapes a generation (vLLM has the same
type). The serving layer builds it from the OpenAI request and the model's
``generation_defaults`` (:func:`from_request`); the built-in handler and its batching engine
take it as it is.

Custom handlers choose how they receive it (:func:`handler_kwargs`):

- a ``sampling_params`` keyword: the whole :class:`SamplingParams`;
- otherwise the keywords of the model-server document (``max_new_tokens``, ``temperature``,
  ``top_p``, ``stop``) and the optional ``seed``, ``min_new_tokens`` and ``response_format``,
  each only when the method's signature accepts it (all of them with ``**kwargs``).

A setting the client set explicitly that the handler cannot receive is refused with a 400
naming the request field, rather than dropped: a client that sends ``seed`` expects
reproducible samples, one that sends ``stop`` expects the text to end there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api import openai
from modelyard.runtime import errors, invoke, options

__all__ = ["LEGACY_KEYWORDS", "SamplingParams", "from_request", "handler_kwargs"]

MAX_STOP_STRINGS = 16


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How one generation samples and when it ends."""

    max_tokens: int
    """Tokens to generate at most."""
    temperature: float = 0.0
    """0 is greedy."""
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    """Strings that end the generation (never part of the text)."""
    seed: int | None = None
    """Seeds this request's own random generator: the same tokens alone or in any batch."""
    min_tokens: int = 0
    """End-of-sequence is not allowed before this many tokens (``ignore_eos``: all of them)."""
    response_format: Mapping[str, Any] | None = None
    """The request's ``response_format`` when it is json_object or json_schema (read-only)."""
    logprobs: int | None = None
    """None: no logprobs; k: each token's logprob and its step's k most likely alternatives."""
    n: int = 1
    """Choices to generate for the request (each its own sequence)."""
    tool_call: Mapping[str, Any] | None = None
    """The one function call the answer must be (``tool_choice`` required or named): the
    format and JSON schema of :meth:`modelyard.runtime.toolcalls.Plan.grammar`."""
    set_by: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """For each field the client set explicitly, the request field that set it
    (``max_tokens`` may come from ``max_completion_tokens``, ``min_tokens`` from ``ignore_eos``);
    fields absent here hold the model's defaults."""


LEGACY_KEYWORDS: dict[str, str] = {
    "max_tokens": "max_new_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop",
    "seed": "seed",
    "min_tokens": "min_new_tokens",
    "response_format": "response_format",
}
"""The :class:`SamplingParams` field behind each keyword of the model-server document."""


def _legacy_value(params: SamplingParams, field: str) -> Any:
    value = getattr(params, field)
    if field == "stop":
        return list(value) or None
    if field == "min_tokens":
        return value or None
    if field == "response_format":
        return dict(value) if value is not None else None
    return value


def handler_kwargs(method: Callable[..., Any], params: SamplingParams) -> dict[str, Any]:
    """The keyword arguments that give ``params`` to ``method``; a 400 naming the request
    field when the client set something the method's signature cannot receive."""
    if invoke.declares(method, "sampling_params"):
        return {"sampling_params": params}
    out: dict[str, Any] = {}
    for field, keyword in LEGACY_KEYWORDS.items():
        if invoke.accepts(method, keyword):
            out[keyword] = _legacy_value(params, field)
        elif field in params.set_by:
            name = params.set_by[field]
            raise errors.UnsupportedError(
                f"{name}: this model's handler does not accept {keyword!r}, so it cannot honour {name}",
                param=name,
            )
    return out


def _stop(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if len(value) > MAX_STOP_STRINGS:
        raise errors.BadRequestError(f"stop: at most {MAX_STOP_STRINGS} stop strings", param="stop")
    return tuple(s for s in value if s)


def _flag(extra: Mapping[str, Any], name: str) -> bool | None:
    value = extra.get(name)
    if value is not None and not isinstance(value, bool):
        raise errors.BadRequestError(f"{name}: must be a boolean", param=name)
    return value


def from_request(
    req: openai.ChatCompletionRequest | openai.CompletionRequest,
    defaults: options.GenerationDefaults,
    response_format: Mapping[str, Any] | None = None,
) -> SamplingParams:
    """The parameters of a chat or completion request, the model's defaults filling what the
    request leaves out."""
    extra: Mapping[str, Any] = req.model_extra or {}
    set_by: dict[str, str] = {}
    budget = getattr(req, "max_completion_tokens", None)
    if budget:
        set_by["max_tokens"] = "max_completion_tokens"
    elif req.max_tokens:
        budget = req.max_tokens
        set_by["max_tokens"] = "max_tokens"
    max_tokens = int(budget or defaults.max_tokens or 256)
    for field in ("temperature", "top_p", "seed"):
        if getattr(req, field) is not None:
            set_by[field] = field
    stop = _stop(req.stop)
    if stop:
        set_by["stop"] = "stop"
    min_tokens = extra.get("min_tokens")
    if min_tokens is not None:
        if not isinstance(min_tokens, int) or isinstance(min_tokens, bool) or min_tokens < 0:
            raise errors.BadRequestError("min_tokens: must be a non-negative integer", param="min_tokens")
        if min_tokens:
            set_by["min_tokens"] = "min_tokens"
    if _flag(extra, "ignore_eos"):
        min_tokens = max_tokens
        set_by["min_tokens"] = "ignore_eos"
    if response_format is not None:
        set_by["response_format"] = "response_format"
    logprobs = _logprobs(req)
    if logprobs is not None:
        set_by["logprobs"] = "logprobs"
    if req.n > 1:
        set_by["n"] = "n"
    temperature = req.temperature if req.temperature is not None else defaults.temperature
    top_p = req.top_p if req.top_p is not None else defaults.top_p
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=float(temperature or 0.0),
        top_p=float(top_p or 1.0),
        stop=stop,
        seed=req.seed,
        min_tokens=min(int(min_tokens or 0), max_tokens),
        response_format=response_format,
        logprobs=logprobs,
        n=req.n,
        set_by=set_by,
    )


def _logprobs(req: openai.ChatCompletionRequest | openai.CompletionRequest) -> int | None:
    """How many alternatives per token the request wants, None for no logprobs: chat's
    ``logprobs: true`` with ``top_logprobs`` (0 when absent), completions' ``logprobs: k``."""
    if isinstance(req, openai.CompletionRequest):
        return req.logprobs
    if req.top_logprobs is not None and not req.logprobs:
        raise errors.BadRequestError(
            "top_logprobs: needs logprobs: true (send both, or neither)", param="top_logprobs"
        )
    return (req.top_logprobs or 0) if req.logprobs else None
