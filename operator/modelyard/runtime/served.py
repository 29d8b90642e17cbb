"""The models one server serves: each handler with its kind, defaults, limiter and batcher.

A live LoRA adapter is served as a model of its own name that shares its base's handler and
limiter (one batch, one queue) and carries the adapter's key (``adapter``). Adapters come and
go while the server runs: the set of them is replaced whole on every change, never mutated, so
a reader iterating it in the event loop never sees it change under it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from modelyard.runtime import batching, errors, limiter, options, protocols

FALLBACK = options.GenerationDefaults(temperature=1.0, top_p=1.0, max_tokens=256)


@dataclasses.dataclass
class ServedModel:
    name: str
    handler: Any
    kind: protocols.Kind
    defaults: options.GenerationDefaults
    limiter: limiter.Limiter
    created: int = dataclasses.field(default_factory=lambda: int(time.time()))
    batcher: batching.Batcher[Any, Any] | None = None
    max_n: int = 1
    """The most choices (``n``) a request may ask of this model: ``--max-n`` when its handler
    supports ``n``, else 1."""
    adapter: str | None = None
    """A live adapter's key in its handler; None for a model loaded at startup."""
    parent: str | None = None
    """A live adapter's base model (its served name)."""
    root: str | None = None
    """A live adapter's path."""

    @property
    def owned_by(self) -> str:
        return str(protocols.attribute(self.handler, "owned_by"))

    @property
    def supports_structured_outputs(self) -> bool:
        return bool(protocols.attribute(self.handler, "supports_structured_outputs"))

    @property
    def supports_logprobs(self) -> bool:
        return bool(protocols.attribute(self.handler, "supports_logprobs"))

    def queue_stats(self) -> protocols.EngineStats:
        """Requests running and waiting, and KV figures when the handler batches generation.

        A batching handler reports its own batch; requests still queued in the limiter (over
        the batch size) count as waiting. Other models: the limiter's slots and the
        embedding/rerank collector's pending items."""
        stats = getattr(self.handler, "engine_stats", None)
        if callable(stats):
            engine: protocols.EngineStats = stats()
            return dataclasses.replace(engine, waiting=engine.waiting + self.limiter.waiting)
        pending = self.batcher.pending if self.batcher is not None else 0
        return protocols.EngineStats(
            running=self.limiter.running,
            waiting=self.limiter.waiting + pending,
            kv_cache_bytes=0,
            kv_cache_reserved_bytes=0,
            kv_cache_budget_bytes=0,
        )

    def batch_function(self) -> Any:
        """What the batcher calls for this model, or None when the handler cannot batch."""
        if self.kind == "embedding":
            handler = self.handler

            def embed(texts: list[str]) -> list[np.ndarray[Any, Any]]:
                return list(np.asarray(handler.embed(texts), dtype=np.float32))

            return embed
        if self.kind == "rerank" and callable(getattr(self.handler, "score_pairs", None)):
            return self.handler.score_pairs
        return None


def serve(
    name: str,
    handler: Any,
    settings: options.ServerSettings,
    generation: options.GenerationDefaults | None = None,
) -> ServedModel:
    """Wrap a loaded handler for serving under ``name``."""
    kind = protocols.kind_of(handler)
    parallelism = protocols.attribute(handler, "max_parallelism")
    if parallelism is None:
        parallelism = 4 if protocols.attribute(handler, "thread_safe") else 1
    handler_defaults = protocols.attribute(handler, "generation_defaults") or {}
    from_handler = options.GenerationDefaults(
        temperature=handler_defaults.get("temperature"),
        top_p=handler_defaults.get("top_p"),
        max_tokens=handler_defaults.get("max_tokens"),
    )
    defaults = (generation or options.GenerationDefaults()).merged_over(from_handler).merged_over(FALLBACK)
    return ServedModel(
        name=name,
        handler=handler,
        kind=kind,
        defaults=defaults,
        limiter=limiter.Limiter(name, int(parallelism), settings.max_queue),
        max_n=settings.max_n if protocols.attribute(handler, "supports_n") else 1,
    )


class ModelSet:
    def __init__(self, models: Iterable[ServedModel]) -> None:
        self._models: dict[str, ServedModel] = {}
        for model in models:
            if model.name in self._models:
                raise errors.LoadError(f"two models are served as {model.name!r}; give one a --served-name")
            self._models[model.name] = model
        self._adapters: dict[str, ServedModel] = {}

    def __iter__(self) -> Iterator[ServedModel]:
        """The models loaded at startup (live adapters: :meth:`adapters`)."""
        return iter(self._models.values())

    def adapters(self) -> list[ServedModel]:
        return list(self._adapters.values())

    def add_adapter(self, model: ServedModel) -> None:
        self._adapters = {**self._adapters, model.name: model}

    def remove_adapter(self, name: str) -> None:
        self._adapters = {k: v for k, v in self._adapters.items() if k != name}

    def __len__(self) -> int:
        return len(self._models)

    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str, kind: protocols.Kind | None = None) -> ServedModel:
        model = self._models.get(name) or self._adapters.get(name)
        if model is None:
            served = [*self._models, *self._adapters]
            raise errors.ModelNotFoundError(
                f"the model {name!r} does not exist; served here: {', '.join(served) or 'nothing'}",
                param="model",
                code="model_not_found",
            )
        if kind is not None and model.kind != kind:
            raise errors.UnsupportedError(
                f"the model {name!r} is a {model.kind} model and does not serve this endpoint", param="model"
            )
        return model
