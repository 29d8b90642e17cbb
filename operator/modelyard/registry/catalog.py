"""The registry API: the operations of the Model Garden document over a set of ModelEntry objects.

    models = catalog.Catalog.builtin()
    model = models.get("meta-llama/Llama-3.2-1B-Instruct")   # name, servedName or repo
    models.find(category="text-llm", capability="training")
    models.training_hyperparameters(model_id, {"learningRate": 1e-4})
    ok, reason = models.validate_for_inference(model_id, gpu_type="NVIDIA-L4", gpu_count=1)

Lookups accept the entry's Kubernetes name, its served name or its source repo. Validation
answers ``(ok, reason)`` (a :class:`~.verdicts.Verdict`), never raises for a model that merely cannot
run; the checks themselves, on one entry, are :mod:`.verdicts`'.
"""

from __future__ import annotations

import difflib
import pathlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import yaml

from modelyard import api
from modelyard.api import base, model_entry, training_job
from modelyard.registry import errors, manifests, model_garden, models_yaml, resolve, verdicts

BUILTIN_CATALOG = pathlib.Path(__file__).with_name("builtin") / "catalog.yaml"
CAPABILITIES = tuple(model_entry.Capabilities.model_fields)

def load_file(path: pathlib.Path) -> list[api.ModelEntry]:
    """ModelEntry objects from any catalog format: Model Garden JSON, models.yaml (with its
    models.local.yaml) or ModelEntry manifests."""
    if path.suffix == ".json":
        return model_garden.load(path)
    try:
        first = next((d for d in yaml.safe_load_all(path.read_text()) if d is not None), None)
    except yaml.YAMLError as exc:
        raise errors.CatalogError(str(path), [f"not valid YAML: {exc}"]) from None
    if isinstance(first, dict) and "models" in first and "kind" not in first:
        return [models_yaml.to_entry(m) for m in models_yaml.load(path)]
    return manifests.load_entries(path)


class Catalog:
    """An in-memory catalog of ModelEntry objects (not kopf's or Prometheus's registries)."""

    def __init__(
        self, entries: Iterable[api.ModelEntry], resolutions: Mapping[str, resolve.Resolution] | None = None
    ) -> None:
        """``resolutions`` (by entry name) spares resolving entries the caller already has."""
        self._entries: dict[str, api.ModelEntry] = {}
        self._resolved: dict[str, resolve.Resolution] = {}
        self._index: dict[str, str] = {}
        known = resolutions or {}
        for entry in entries:
            self.add(entry, known.get(entry.name))

    @classmethod
    def builtin(cls) -> Catalog:
        return cls(manifests.load_entries(BUILTIN_CATALOG))

    @classmethod
    def from_files(cls, paths: Iterable[pathlib.Path]) -> Catalog:
        return cls(e for p in paths for e in load_file(p))

    def add(self, entry: api.ModelEntry, resolution: resolve.Resolution | None = None) -> None:
        """Add or replace an entry (keyed by its Kubernetes name); it is resolved once, here."""
        self.remove(entry.name)
        self._entries[entry.name] = entry
        self._resolved[entry.name] = resolution or resolve.resolve(entry)
        for key in (entry.name, entry.spec.served_name, entry.spec.source.repo):
            if key:
                self._index.setdefault(key, entry.name)

    def remove(self, name: str) -> None:
        if self._entries.pop(name, None) is not None:
            self._resolved.pop(name, None)
            self._index = {k: v for k, v in self._index.items() if v != name}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and model_id in self._index

    def all(self) -> list[api.ModelEntry]:
        return sorted(self._entries.values(), key=lambda e: e.name)

    def get(self, model_id: str) -> api.ModelEntry:
        name = self._index.get(model_id)
        if name is None:
            close = difflib.get_close_matches(model_id, list(self._index), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise errors.ModelNotFoundError(f"model {model_id!r} is not in the registry{hint}")
        return self._entries[name]

    # -- filters ---------------------------------------------------------------------------

    def find(
        self,
        *,
        category: str | None = None,
        tag: str | None = None,
        lifecycle: str | None = None,
        capability: str | None = None,
        q: str | None = None,
    ) -> list[api.ModelEntry]:
        """Entries matching every filter given. ``capability`` is a capabilities field in either
        spelling (``structuredOutputs`` or ``structured_outputs``); ``q`` searches names,
        description and tags, case-insensitively."""
        if capability is not None:
            capability = _capability_field(capability)
        found = []
        for entry in self.all():
            resolved = self._resolved[entry.name]
            if category and resolved.category != category:
                continue
            if tag and tag not in (entry.spec.tags or []):
                continue
            if lifecycle and entry.spec.lifecycle != lifecycle:
                continue
            if capability and not getattr(resolved.capabilities, capability):
                continue
            if q and q.lower() not in _haystack(entry):
                continue
            found.append(entry)
        return found

    def categories(self) -> dict[str, int]:
        """Category -> number of entries, for every category."""
        counts: dict[str, int] = dict.fromkeys(model_entry.CATEGORIES, 0)
        for resolved in self._resolved.values():
            category = resolved.category
            if category:
                counts[category] += 1
        return counts

    # -- defaults merged with overrides ----------------------------------------------------

    def training_hyperparameters(
        self, model_id: str, overrides: model_entry.Hyperparameters | Mapping[str, Any] | None = None
    ) -> model_entry.Hyperparameters:
        defaults = self.get(model_id).spec.training_defaults
        return merge_defaults(
            model_entry.Hyperparameters, defaults.hyperparameters if defaults else None, overrides
        )

    def lora_config(
        self, model_id: str, overrides: model_entry.LoraConfig | Mapping[str, Any] | None = None
    ) -> model_entry.LoraConfig:
        defaults = self.get(model_id).spec.training_defaults
        return merge_defaults(model_entry.LoraConfig, defaults.lora if defaults else None, overrides)

    def inference_config(
        self, model_id: str, overrides: model_entry.InferenceDefaults | Mapping[str, Any] | None = None
    ) -> model_entry.InferenceDefaults:
        return merge_defaults(
            model_entry.InferenceDefaults, self.get(model_id).spec.inference_defaults, overrides
        )

    # -- validation --------------------------------------------------------------------------

    def validate_for_training(
        self, model_id: str, method: training_job.Method = "lora", gpu_memory_gib: float | None = None
    ) -> verdicts.Verdict:
        try:
            entry = self.get(model_id)
        except errors.ModelNotFoundError as exc:
            return verdicts.Verdict(False, str(exc))
        return verdicts.validate_training(entry, method, gpu_memory_gib)

    def validate_for_inference(
        self,
        model_id: str,
        *,
        gpu_type: str | None = None,
        gpu_memory_gib: float | None = None,
        gpu_count: int = 1,
        max_model_len: int | None = None,
    ) -> verdicts.Verdict:
        try:
            entry = self.get(model_id)
        except errors.ModelNotFoundError as exc:
            return verdicts.Verdict(False, str(exc))
        return verdicts.validate_inference(
            entry,
            gpu_type=gpu_type,
            gpu_memory_gib=gpu_memory_gib,
            gpu_count=gpu_count,
            max_model_len=max_model_len,
        )


M = TypeVar("M", bound=base.ApiModel)


def merge_defaults(model: type[M], defaults: M | None, overrides: M | Mapping[str, Any] | None) -> M:
    """Defaults with overrides on top, key by key (the Model Garden ``{**defaults, **user}``)."""
    merged_base = defaults.model_dump(exclude_none=True) if defaults else {}
    if overrides is None:
        top: dict[str, Any] = {}
    elif isinstance(overrides, model):
        top = overrides.model_dump(exclude_none=True)
    else:
        top = model.model_validate(dict(overrides)).model_dump(exclude_none=True)
    return model.model_validate({**merged_base, **top})


def _capability_field(name: str) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    if snake not in CAPABILITIES:
        raise errors.RegistryError(f"unknown capability {name!r}; one of {', '.join(CAPABILITIES)}")
    return snake


def _haystack(entry: api.ModelEntry) -> str:
    spec = entry.spec
    parts = [
        entry.name,
        spec.served_name,
        spec.source.repo,
        spec.display_name,
        spec.description,
        *(spec.tags or []),
    ]
    return " ".join(p for p in parts if p).lower()
