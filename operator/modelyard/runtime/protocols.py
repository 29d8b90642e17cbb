"""What a model handler is: the protocols the server calls, and the results they return.

These follow the model-server document (``seeds/001``): a handler is any class with the
attributes below and one of ``generate``/``complete`` (chat), ``embed`` (embeddings),
``transcribe`` (speech) or ``rerank``. Custom handlers are loaded by class path and need not
inherit from anything; :func:`attribute` reads the optional attributes with their defaults.

Optional attributes that change how the server drives a handler:

``thread_safe``                  False (default): calls are serialised (``max_parallelism`` 1)
``max_parallelism``              cap of in-flight calls per handler (None: 1, or 4 if thread safe)
``generation_defaults``          {"temperature", "top_p", "max_tokens"}; requests override them
``supports_structured_outputs``  accept ``response_format`` (json_object / json_schema)
``supports_logprobs``            accept ``logprobs`` / ``top_logprobs`` (``sampling_params.logprobs``)
``supports_n``                   accept ``n`` > 1: return a list of ``sampling_params.n`` generations
``owned_by``                     shown in ``/v1/models``
``engine_stats()``               an :class:`EngineStats` of a batching engine (queue and KV signals)

Chat methods receive sampling one of two ways (:mod:`modelyard.runtime.sampling`): a method
that declares ``sampling_params`` gets one :class:`~modelyard.runtime.sampling.SamplingParams`;
otherwise it gets the document's keywords below plus, when its signature accepts them,
``seed``, ``min_new_tokens`` and ``response_format``. A setting the client set that the
signature cannot receive is a 400 naming it. ``on_token`` (streaming) is passed when accepted;
it takes text (``str``), or a :class:`Piece` (text, choice index and logprobs) from a handler
that supports ``n`` or logprobs and was asked for them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Kind = Literal["chat", "embedding", "speech", "rerank"]
FinishReason = Literal["stop", "length", "cancelled"]

__all__ = [
    "ChatGeneration",
    "ChatModel",
    "CompletionModel",
    "EmbeddingModel",
    "EngineStats",
    "FinishReason",
    "Kind",
    "Piece",
    "RerankModel",
    "RerankResult",
    "Segment",
    "SpeechModel",
    "SpeechResult",
    "TokenLogprob",
    "Word",
    "attribute",
    "kind_of",
]


@dataclasses.dataclass(frozen=True)
class EngineStats:
    """What a batching engine reports for ``/metrics``: its queue, its KV cache and prefix cache."""

    running: int
    """Sequences in the running batch."""
    waiting: int
    """Sequences admitted by the server but not yet in the batch (batch full or KV budget)."""
    kv_cache_bytes: int
    """Bytes the running batch's KV tensors hold now (padding included)."""
    kv_cache_reserved_bytes: int
    """The batch's worst-case KV size, which admission keeps within the budget."""
    kv_cache_budget_bytes: int
    prefix_cache_hits: int = 0
    prefix_cache_misses: int = 0
    prefix_cache_hit_tokens: int = 0
    prefix_cache_query_tokens: int = 0
    prefix_cache_bytes: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token: its text, its log-probability, and the most likely tokens at its
    step (``top``: (text, logprob) pairs, most likely first)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Piece:
    """Streamed text of one choice, with the logprobs of the tokens it completes (None when
    the request did not ask for them)."""

    index: int
    text: str
    logprobs: tuple[TokenLogprob, ...] | None = None


TokenCallback = Callable[[str | Piece], None]


@dataclasses.dataclass
class ChatGeneration:
    """One finished generation. ``text`` excludes the stop string that ended it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason = "stop"
    logprobs: list[TokenLogprob] | None = None
    """Every generated token's logprobs (the end-of-sequence token excepted), when asked for."""
    index: int = 0
    """Which of the request's ``n`` choices this is."""


@dataclasses.dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str


@dataclasses.dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float


@dataclasses.dataclass
class SpeechResult:
    text: str
    language: str | None = None
    duration: float | None = None
    segments: list[Segment] = dataclasses.field(default_factory=list)
    words: list[Word] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class RerankResult:
    index: int
    score: float


@runtime_checkable
class ChatModel(Protocol):
    name: str
    capabilities: list[str]

    def generate(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str] | None = None,
        cancel_event: threading.Event | None = None,
    ) -> ChatGeneration: ...

    def count_tokens(
        self, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = True
    ) -> int: ...


@runtime_checkable
class CompletionModel(Protocol):
    """Raw-prompt completion (``/v1/completions``); the built-in chat handler is one too."""

    name: str

    def complete(
        self,
        prompt: str,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str] | None = None,
        cancel_event: threading.Event | None = None,
    ) -> ChatGeneration: ...


@runtime_checkable
class EmbeddingModel(Protocol):
    name: str
    dim: int
    capabilities: list[str]

    def embed(
        self, texts: list[str], cancel_event: threading.Event | None = None
    ) -> npt.NDArray[np.float32]: ...

    def count_tokens(self, texts: list[str]) -> int: ...


@runtime_checkable
class SpeechModel(Protocol):
    name: str
    capabilities: list[str]

    def transcribe(
        self,
        audio_path: str,
        *,
        language: str | None,
        prompt: str | None,
        temperature: float | None,
        task: Literal["transcribe", "translate"],
        timestamp_granularity: Literal["word", "segment"] | None,
        cancel_event: threading.Event | None = None,
    ) -> SpeechResult: ...


@runtime_checkable
class RerankModel(Protocol):
    name: str
    capabilities: list[str]

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_k: int | None = None,
        cancel_event: threading.Event | None = None,
    ) -> list[RerankResult]: ...


_DEFAULTS: dict[str, Any] = {
    "thread_safe": False,
    "max_parallelism": None,
    "generation_defaults": None,
    "supports_structured_outputs": False,
    "supports_logprobs": False,
    "supports_n": False,
    "owned_by": "modelyard",
}


def attribute(handler: object, name: str) -> Any:
    """An optional handler attribute, or its documented default."""
    return getattr(handler, name, _DEFAULTS[name])


def kind_of(handler: object) -> Kind:
    """Which endpoint family a handler serves, from the methods it has."""
    if callable(getattr(handler, "generate", None)) or callable(getattr(handler, "complete", None)):
        return "chat"
    if callable(getattr(handler, "embed", None)):
        return "embedding"
    if callable(getattr(handler, "transcribe", None)):
        return "speech"
    if callable(getattr(handler, "rerank", None)):
        return "rerank"
    raise TypeError(
        f"{type(handler).__name__} implements none of generate, complete, embed, transcribe, rerank"
    )
