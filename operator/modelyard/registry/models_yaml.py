"""The ``models.yaml`` catalog of the model-server document, and its ``models.local.yaml``.

A local file overrides catalog entries whose ``name`` or ``hf_repo_id`` matches (the local
keys win, key by key, ``defaults`` merged too) and appends new ones. Each entry becomes a
ModelEntry: the served name is ``name`` (default ``hf_repo_id``), the handler class path is
kept as it is (the runtime maps the document's handler classes to its own), an upstream proxy
becomes engine ``upstream`` with its API key read from a Secret whose key is the env var's
name.
"""

from __future__ import annotations

import pathlib
from typing import Any, Literal

import pydantic
import yaml

from modelyard import api
from modelyard.api import model_entry, wire
from modelyard.registry import errors, manifests

# The Secret that holds upstream API keys imported from ``upstream_api_key_env``.
UPSTREAM_KEYS_SECRET = "modelyard-upstream-keys"

# Handler class name (last dotted part) -> category, for the document's handlers.
_HANDLER_CATEGORIES: dict[str, model_entry.Category] = {
    "HFEmbeddingModel": "embedding",
    "TextChatModel": "text-llm",
    "QwenVLChat": "vision-vlm",
    "WhisperASR": "speech",
    "OpenAIChatProxyModel": "text-llm",
}


class Defaults(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    temperature: float | None = pydantic.Field(default=None, ge=0, le=2)
    top_p: float | None = pydantic.Field(default=None, gt=0, le=1)
    max_tokens: int | None = pydantic.Field(default=None, ge=1)


class CatalogModel(pydantic.BaseModel):
    """One entry of models.yaml, as the model-server document defines it."""

    model_config = pydantic.ConfigDict(extra="forbid")
    name: str | None = pydantic.Field(default=None, min_length=1)
    hf_repo_id: str = pydantic.Field(min_length=1)
    handler: str = pydantic.Field(pattern=r"^[A-Za-z_][\w.]*$")
    supports_structured_outputs: bool = False
    pooling: Literal["mean", "cls", "last", "max"] | None = None
    defaults: Defaults | None = None
    upstream_base_url: str | None = pydantic.Field(default=None, pattern="^https?://.+")
    upstream_api_key_env: str | None = pydantic.Field(default=None, pattern="^[A-Za-z_][A-Za-z0-9_]*$")
    skip_download: bool = False


def _read(path: pathlib.Path) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise errors.CatalogError(str(path), [f"not valid YAML: {exc}"]) from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise errors.CatalogError(str(path), ["models: expected a list of mappings"])
    return [dict(m) for m in models]


def local_file_for(path: pathlib.Path) -> pathlib.Path | None:
    """The ``models.local.yaml`` (or ``.yml``) next to a ``models.yaml``, if there is one."""
    for suffix in (".yaml", ".yml"):
        candidate = path.with_name(f"{path.name.split('.')[0]}.local{suffix}")
        if candidate.is_file():
            return candidate
    return None


def merge(catalog: list[dict[str, Any]], local: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Local entries override catalog entries with the same name or hf_repo_id; others append."""
    merged = [dict(m) for m in catalog]
    for override in local:
        keys = {override.get("name"), override.get("hf_repo_id")} - {None}
        for i, existing in enumerate(merged):
            if keys & ({existing.get("name"), existing.get("hf_repo_id")} - {None}):
                merged[i] = _deep_merge(existing, override)
                break
        else:
            merged.append(dict(override))
    return merged


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse(raw: list[dict[str, Any]], source: str) -> list[CatalogModel]:
    """Validate every entry; all problems at once, each naming the entry and the field."""
    models: list[CatalogModel] = []
    problems: list[str] = []
    for index, item in enumerate(raw):
        label = item.get("name") or item.get("hf_repo_id") or "?"
        try:
            models.append(CatalogModel.model_validate(item))
        except pydantic.ValidationError as exc:
            problems.extend(manifests.field_errors(exc, prefix=f"models[{index}] ({label}): "))
    served = [m.name or m.hf_repo_id for m in models]
    problems.extend(
        f"models: duplicate name {n!r}" for n in sorted({n for n in served if served.count(n) > 1})
    )
    if problems:
        raise errors.CatalogError(source, problems)
    return models


def load(path: pathlib.Path, local: pathlib.Path | None = None) -> list[CatalogModel]:
    """models.yaml merged with its local override file (found next to it when not given)."""
    raw = _read(path)
    local = local or local_file_for(path)
    sources = str(path)
    if local is not None:
        raw = merge(raw, _read(local))
        sources = f"{path} + {local}"
    return parse(raw, sources)


def to_entry(model: CatalogModel) -> api.ModelEntry:
    served = model.name or model.hf_repo_id
    category = _HANDLER_CATEGORIES.get(model.handler.rsplit(".", 1)[-1])
    spec: dict[str, Any] = {
        "source": {"provider": "huggingface", "repo": model.hf_repo_id},
        "servedName": served,
        "runtime": {"engine": "transformers", "handler": model.handler},
    }
    if category:
        spec["category"] = category
    if model.pooling:
        spec["runtime"]["pooling"] = model.pooling
    if model.supports_structured_outputs:
        spec["capabilities"] = {"structuredOutputs": True}
    if model.defaults:
        spec["generationDefaults"] = {
            k: v
            for k, v in {
                "temperature": model.defaults.temperature,
                "topP": model.defaults.top_p,
                "maxTokens": model.defaults.max_tokens,
            }.items()
            if v is not None
        }
    if model.upstream_base_url:
        spec["source"] = {"provider": "upstream", "repo": model.hf_repo_id}
        spec["runtime"]["engine"] = "upstream"
        upstream: dict[str, Any] = {"baseUrl": model.upstream_base_url, "model": model.hf_repo_id}
        if model.upstream_api_key_env:
            upstream["apiKeySecretRef"] = {"name": UPSTREAM_KEYS_SECRET, "key": model.upstream_api_key_env}
        spec["upstream"] = upstream
    annotations = {wire.SKIP_DOWNLOAD: "true"} if model.skip_download else None
    metadata: dict[str, Any] = {"name": manifests.k8s_name(served)}
    if annotations:
        metadata["annotations"] = annotations
    return api.ModelEntry.model_validate({"metadata": metadata, "spec": spec})


def from_entry(entry: api.ModelEntry) -> dict[str, Any]:
    """A ModelEntry as a models.yaml entry (the inverse of :func:`to_entry`)."""
    spec = entry.spec
    out: dict[str, Any] = {}
    repo = spec.upstream.model if spec.upstream and spec.upstream.model else spec.source.repo
    if spec.served_name and spec.served_name != repo:
        out["name"] = spec.served_name
    out["hf_repo_id"] = repo
    out["handler"] = spec.runtime.handler if spec.runtime and spec.runtime.handler else _default_handler(spec)
    if spec.capabilities and spec.capabilities.structured_outputs:
        out["supports_structured_outputs"] = True
    if spec.runtime and spec.runtime.pooling:
        out["pooling"] = spec.runtime.pooling
    if spec.generation_defaults:
        g = spec.generation_defaults
        defaults = {"temperature": g.temperature, "top_p": g.top_p, "max_tokens": g.max_tokens}
        out["defaults"] = {k: v for k, v in defaults.items() if v is not None}
    if spec.upstream:
        out["upstream_base_url"] = spec.upstream.base_url
        if spec.upstream.api_key_secret_ref:
            out["upstream_api_key_env"] = spec.upstream.api_key_secret_ref.key
    annotations = entry.metadata.annotations or {}
    if annotations.get(wire.SKIP_DOWNLOAD) == "true":
        out["skip_download"] = True
    return out


def _default_handler(spec: model_entry.ModelEntrySpec) -> str:
    if spec.engine == "upstream":
        return "app.models.openai_proxy.OpenAIChatProxyModel"
    by_category = {v: k for k, v in _HANDLER_CATEGORIES.items() if k != "OpenAIChatProxyModel"}
    name = by_category.get(spec.category or "text-llm", "TextChatModel")
    module = {"HFEmbeddingModel": "hf_embedding", "QwenVLChat": "qwen_vl", "WhisperASR": "whisper"}.get(
        name, "text_chat"
    )
    return f"app.models.{module}.{name}"


def dump(entries: list[api.ModelEntry]) -> str:
    return yaml.safe_dump({"models": [from_entry(e) for e in entries]}, sort_keys=False, width=110)
