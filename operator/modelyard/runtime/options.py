"""The runtime's settings: what to serve (``ModelSpec``), how to serve it (``ServerSettings``).

Both are plain frozen dataclasses built by the CLI from flags, ``MODELS`` and the catalog, and
by tests directly. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Engine = Literal["transformers", "vllm"]
Pooling = Literal["mean", "cls", "last", "max"]

__all__ = ["Engine", "GenerationDefaults", "ModelSpec", "Pooling", "ServerSettings"]


@dataclasses.dataclass(frozen=True)
class GenerationDefaults:
    """Per-model defaults; a request's own values always win."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None

    def merged_over(self, other: GenerationDefaults) -> GenerationDefaults:
        """These values, falling back to ``other``'s where unset."""
        return GenerationDefaults(
            temperature=self.temperature if self.temperature is not None else other.temperature,
            top_p=self.top_p if self.top_p is not None else other.top_p,
            max_tokens=self.max_tokens if self.max_tokens is not None else other.max_tokens,
        )


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model to serve.

    ``source`` is a local directory or a Hugging Face repo id; ``provider`` None picks
    ``local`` for an existing directory and ``huggingface`` otherwise; ``handler`` None detects
    the handler from the model's config.json.
    """

    source: str
    served_name: str
    provider: str | None = None
    handler: str | None = None
    revision: str | None = None
    pooling: Pooling | None = None
    dtype: str | None = None
    max_model_len: int | None = None
    generation: GenerationDefaults = dataclasses.field(default_factory=GenerationDefaults)
    supports_structured_outputs: bool | None = None
    tool_call_parser: str | None = None
    """How the model writes function calls (the entry's ``runtime.toolCallParser``)."""


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """How the server runs; shared by every served model."""

    host: str = "0.0.0.0"
    port: int = 8000
    device: str | None = None
    """torch device; None: cuda when available, else cpu."""
    cache_dir: str | None = None
    max_request_bytes: int = 32 * 1024 * 1024
    max_queue: int = 64
    """Requests waiting per model beyond those running; more get 429."""
    batching: bool = True
    """Coalesce concurrent embedding / rerank requests; off: one model call per request."""
    batch_max_size: int = 32
    """Embedding texts / rerank pairs in one forward pass."""
    batch_window_ms: float = 5.0
    warmup: bool = True
    worker_threads: int = 4
    max_num_seqs: int = 32
    """Chat/completion sequences decoded together in one batch (the continuous-batching bound)."""
    kv_cache_bytes: int = 2 * 1024**3
    """The running batch's KV cache may never exceed this; requests wait until it fits."""
    prefix_cache_bytes: int = 512 * 1024**2
    """KV of recent prompt prefixes kept for reuse (LRU); 0 turns the prefix cache off."""
    max_n: int = 8
    """The most choices (``n``) one chat or completion request may ask for."""
    max_adapters: int = 8
    """Live LoRA adapters loaded at once; one more is refused (409), never evicted."""
    max_lora_rank: int = 64
    """The largest LoRA rank an adapter may have."""
    adapters_file: str | None = None
    """A JSON list of ``{"name", "path"}``: loaded before ready, then followed by change."""
    adapters_sync_seconds: float = 5.0
    """How often the adapters file is read again."""
