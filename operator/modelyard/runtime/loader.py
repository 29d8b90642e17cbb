"""From names to loaded handlers: ``--model`` / ``MODELS`` entries, the catalog, config.json.

A name is, in order: an existing directory (provider ``local``), an entry of the built-in
catalog or of ``--catalog`` files such as the model-server document's models.yaml (by name,
servedName or repo; its provider, handler, pooling and defaults apply), or a Hugging Face
repo id. Without an explicit handler, the handler follows from the model's
config.json through :func:`modelyard.registry.architectures.detect`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
from collections.abc import Sequence
from typing import Any

from modelyard import api
from modelyard.registry import architectures, catalog
from modelyard.registry import errors as registry_errors
from modelyard.runtime import errors, handlers, invoke, options, providers, served

log = logging.getLogger(__name__)


def _is_dir(source: str) -> bool:
    return pathlib.Path(source.removeprefix("file://")).expanduser().is_dir()


def spec_from_entry(entry: api.ModelEntry) -> options.ModelSpec:
    s = entry.spec
    if s.upstream is not None or (s.runtime is not None and s.runtime.engine == "upstream"):
        raise errors.LoadError(
            f"catalog entry {entry.name!r} is an upstream proxy; the gateway serves it, not a runtime"
        )
    source = s.source.repo or (s.source.uri or "").removeprefix("file://")
    if not source or "://" in source:
        raise errors.LoadError(
            f"catalog entry {entry.name!r}: source {s.source.uri!r} must be mounted; pass --model PATH"
        )
    gen = s.generation_defaults
    inference = s.inference_defaults
    return options.ModelSpec(
        source=source,
        served_name=s.served_name or source,
        provider=s.source.provider
        if s.source.provider in ("huggingface", "local") or s.source.repo
        else None,
        handler=s.runtime.handler if s.runtime else None,
        revision=s.source.revision,
        pooling=s.runtime.pooling if s.runtime else None,
        dtype=inference.dtype if inference else None,
        max_model_len=inference.max_model_len if inference else None,
        generation=options.GenerationDefaults(
            temperature=gen.temperature if gen else None,
            top_p=gen.top_p if gen else None,
            max_tokens=gen.max_tokens if gen else None,
        ),
        supports_structured_outputs=s.capabilities.structured_outputs if s.capabilities else None,
        tool_call_parser=s.runtime.tool_call_parser if s.runtime else None,
    )


def registry(files: Sequence[pathlib.Path] = ()) -> catalog.Catalog:
    """The built-in catalog overlaid by catalog files (models.yaml, Model Garden JSON, manifests).

    An entry from a file wins over a built-in one with the same name, servedName or repo.
    """
    try:
        result = catalog.Catalog(e for path in files for e in catalog.load_file(path))
    except (registry_errors.RegistryError, OSError) as exc:
        raise errors.LoadError(f"catalog: {exc}") from exc
    for entry in catalog.Catalog.builtin().all():
        if not any(
            key in result for key in (entry.name, entry.spec.served_name, entry.spec.source.repo) if key
        ):
            result.add(entry)
    return result


def resolve(name: str, registry: catalog.Catalog | None = None) -> options.ModelSpec:
    """A ModelSpec for one ``--model`` / ``MODELS`` name."""
    if _is_dir(name):
        return options.ModelSpec(source=name, served_name=name, provider="local")
    known = registry if registry is not None else catalog.Catalog.builtin()
    if name in known:
        return spec_from_entry(known.get(name))
    return options.ModelSpec(source=name, served_name=name)


def override(spec: options.ModelSpec, **changes: Any) -> options.ModelSpec:
    """``spec`` with the given (non-None) values replacing its own; generation merged field by field."""
    generation = changes.pop("generation", None)
    values = {k: v for k, v in changes.items() if v is not None}
    if isinstance(generation, options.GenerationDefaults):
        values["generation"] = generation.merged_over(spec.generation)
    return dataclasses.replace(spec, **values)


def make_provider(spec: options.ModelSpec, settings: options.ServerSettings) -> providers.ModelProvider:
    name = spec.provider or ("local" if _is_dir(spec.source) else "huggingface")
    return providers.create_provider(name, cache_dir=settings.cache_dir, revision=spec.revision)


def read_config(provider: providers.ModelProvider, source: str) -> dict[str, Any]:
    path = provider.locate(source) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise errors.LoadError(f"model {source!r}: cannot read {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise errors.LoadError(f"model {source!r}: {path} is not a JSON object")
    return config


def handler_class(spec: options.ModelSpec, provider: providers.ModelProvider) -> type:
    if spec.handler:
        return handlers.resolve(spec.handler)
    try:
        info = architectures.detect(read_config(provider, spec.source))
    except registry_errors.RegistryError as exc:
        raise errors.HandlerError(
            f"model {spec.source!r}: {exc}; give --handler CLASS to serve it anyway"
        ) from exc
    return handlers.for_category(info.category)


def load(spec: options.ModelSpec, settings: options.ServerSettings) -> served.ServedModel:
    """Load one model (once) and wrap it for serving."""
    provider = make_provider(spec, settings)
    provider.validate_model_access(spec.source)
    cls = handler_class(spec, provider)
    log.info(
        "loading %s as %s with %s (provider %s)", spec.source, spec.served_name, cls.__name__, provider.name
    )
    handler = invoke.call(
        cls,
        spec.source,
        settings.device,
        cache_dir=settings.cache_dir,
        name=spec.served_name,
        provider=provider,
        revision=spec.revision,
        pooling=spec.pooling,
        dtype=spec.dtype,
        max_model_len=spec.max_model_len,
        generation_defaults={k: v for k, v in dataclasses.asdict(spec.generation).items() if v is not None},
        supports_structured_outputs=spec.supports_structured_outputs,
        tool_call_parser=spec.tool_call_parser,
        max_num_seqs=settings.max_num_seqs,
        kv_cache_bytes=settings.kv_cache_bytes,
        prefix_cache_bytes=settings.prefix_cache_bytes,
    )
    if getattr(handler, "name", None) is None:
        handler.name = spec.served_name
    return served.serve(spec.served_name, handler, settings, spec.generation)


def download(spec: options.ModelSpec, settings: options.ServerSettings) -> pathlib.Path:
    return make_provider(spec, settings).download(spec.source)
