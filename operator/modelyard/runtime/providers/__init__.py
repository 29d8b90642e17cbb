"""Providers: where a model's files come from (ModelForge's provider protocol, ``seeds/004``).

A provider turns a model id into loaded transformers objects: ``load_model``,
``load_tokenizer``, ``validate_model_access`` and ``get_provider_name`` as in ModelForge, plus
``locate`` (the local directory holding config.json) and ``download`` (pre-fetch). Built in:
``huggingface`` (the Hub cache) and ``local`` (a directory). Custom providers are added with
:func:`register_provider` or through the ``modelyard.providers`` entry-point group; a factory
is called with keyword arguments ``cache_dir`` and ``revision`` and returns a provider.

The custom-provider table is the one deliberate piece of process-wide state in the runtime:
like ``codecs.register``, registration must outlive any one server object.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from modelyard.runtime import errors
from modelyard.runtime.providers import huggingface, local

ENTRY_POINT_GROUP = "modelyard.providers"

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelProvider",
    "ProviderFactory",
    "create_provider",
    "huggingface",
    "known_providers",
    "local",
    "register_provider",
]


@runtime_checkable
class ModelProvider(Protocol):
    name: str

    def get_provider_name(self) -> str: ...

    def locate(self, model_id: str) -> pathlib.Path: ...

    def download(self, model_id: str) -> pathlib.Path: ...

    def load_model(self, model_id: str, model_class: str, **kwargs: Any) -> Any: ...

    def load_tokenizer(
        self, model_id: str, *, tokenizer_class: str = "AutoTokenizer", **kwargs: Any
    ) -> Any: ...

    def validate_model_access(self, model_id: str, model_class: str = "AutoModel") -> bool: ...


ProviderFactory = Callable[..., ModelProvider]

_BUILTIN: dict[str, ProviderFactory] = {
    "huggingface": huggingface.HuggingFaceProvider,
    "local": local.LocalProvider,
}
_CUSTOM: dict[str, ProviderFactory] = {}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``name`` resolvable by :func:`create_provider` (replacing an earlier registration)."""
    if not name or name != name.strip().lower():
        raise ValueError(f"provider names are lowercase and non-empty, got {name!r}")
    _CUSTOM[name] = factory


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_providers() -> list[str]:
    """Every provider name: built-in, registered, and from entry points; sorted."""
    return sorted({*_BUILTIN, *_CUSTOM, *_entry_points()})


def create_provider(name: str, *, cache_dir: str | None = None, revision: str | None = None) -> ModelProvider:
    """A provider by name; an unknown name's error lists the known ones."""
    key = name.strip().lower()
    factory = _CUSTOM.get(key) or _BUILTIN.get(key)
    if factory is None:
        ep = _entry_points().get(key)
        if ep is not None:
            try:
                factory = ep.load()
            except Exception as exc:  # a broken plugin must say which one
                raise errors.ProviderError(
                    f"provider {key!r} (entry point {ep.value}) failed to load: {exc}"
                ) from exc
    if factory is None:
        raise errors.ProviderError(
            f"unknown provider {name!r}; known providers: {', '.join(known_providers())}", param="provider"
        )
    provider = factory(cache_dir=cache_dir, revision=revision)
    return provider
