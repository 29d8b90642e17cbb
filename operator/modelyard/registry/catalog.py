"""The registry API: the operations of the Model Garden document over a set of ModelEntry objects.

    models = catalog.Catalog.builtin()
    model = models.get("meta-llama/Llama-3.2-1B-Instruct")   # name, servedName or repo
    models.find(category="text-llm", capability="training")
    models.training_hyperparameters(model_id, {"learningRate": 1e-4})
    ok, reason = models.validate_for_inference(model_id, gpu_type="NVIDIA-L4", gpu_count=1)

Lookups accept the entry's Kubernetes name, its served name or its source repo. Validation
answers ``(ok, reason)`` (a :class:`Verdict`), never raises for a model that merely cannot run.
"""

from __future__ import annotations

import difflib
import pathlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

import yaml

from modelyard import api
from modelyard.api import base, model_entry, training_job
from modelyard.registry import errors, estimates, gpus, manifests, model_garden, models_yaml, resolve

BUILTIN_CATALOG = pathlib.Path(__file__).with_name("builtin") / "catalog.yaml"
CAPABILITIES = tuple(model_entry.Capabilities.model_fields)

# Bytes of GPU memory per parameter a fine-tune needs (weights, gradients, optimizer state).
_TRAINING_BYTES_PER_PARAM = {"full": 16.0, "lora": 2.4, "qlora": 0.9}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMBT])$")
_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


class Verdict(NamedTuple):
    """``(ok, reason)``: reason says why not, or notes worth showing when ok."""

    ok: bool
    reason: str | None


def parameters_from_text(text: str | None) -> int | None:
    """``"1.1B"`` -> 1_100_000_000."""
    match = _SIZE.match(text or "")
    return int(float(match.group(1)) * _SCALE[match.group(2)]) if match else None


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
    ) -> Verdict:
        try:
            entry = self.get(model_id)
        except errors.ModelNotFoundError as exc:
            return Verdict(False, str(exc))
        return validate_training(entry, method, gpu_memory_gib)

    def validate_for_inference(
        self,
        model_id: str,
        *,
        gpu_type: str | None = None,
        gpu_memory_gib: float | None = None,
        gpu_count: int = 1,
        max_model_len: int | None = None,
    ) -> Verdict:
        try:
            entry = self.get(model_id)
        except errors.ModelNotFoundError as exc:
            return Verdict(False, str(exc))
        return validate_inference(
            entry,
            gpu_type=gpu_type,
            gpu_memory_gib=gpu_memory_gib,
            gpu_count=gpu_count,
            max_model_len=max_model_len,
        )


def validate_training(
    entry: api.ModelEntry, method: training_job.Method = "lora", gpu_memory_gib: float | None = None
) -> Verdict:
    """Can ``entry`` be fine-tuned with ``method`` (on a GPU of ``gpu_memory_gib``)?"""
    resolved = resolve.resolve(entry)
    name = resolved.served_name
    if not resolved.ok:
        return Verdict(False, f"{name} is invalid: {resolved.reason}")
    if entry.spec.lifecycle == "deprecated":
        return Verdict(False, f"{name} is deprecated; pick a stable or experimental model")
    if entry.spec.engine == "upstream":
        return Verdict(False, f"{name} is an upstream proxy model; its weights are not here to train")
    if not resolved.capabilities.training:
        return Verdict(
            False, f"{name} cannot be trained (capabilities.training is false, category {resolved.category})"
        )
    if gpu_memory_gib is None:
        return Verdict(True, None)
    params = (
        resolved.estimate.parameters if resolved.estimate else parameters_from_text(entry.spec.parameters)
    )
    if params is None:
        return Verdict(True, f"no parameter count for {name}: GPU memory not checked")
    needed = params * _TRAINING_BYTES_PER_PARAM[method] / estimates.GIB + estimates.CUDA_CONTEXT_GIB
    if needed > gpu_memory_gib:
        return Verdict(
            False,
            f"{method} fine-tuning of {name} ({estimates.human_count(params)} parameters) needs about "
            f"{needed:.1f} GiB of GPU memory but the GPU has {gpu_memory_gib:g} GiB"
            + ("; try method lora or qlora" if method == "full" else ""),
        )
    return Verdict(True, None)


def validate_inference(
    entry: api.ModelEntry,
    *,
    gpu_type: str | None = None,
    gpu_memory_gib: float | None = None,
    gpu_count: int = 1,
    max_model_len: int | None = None,
    gpu_memory_utilization: float | None = None,
) -> Verdict:
    """Can ``entry`` be served on ``gpu_count`` GPUs of ``gpu_type`` (or ``gpu_memory_gib``)?"""
    resolved = resolve.resolve(entry)
    name = resolved.served_name
    if not resolved.ok:
        return Verdict(False, f"{name} is invalid: {resolved.reason}")
    if not resolved.capabilities.inference:
        return Verdict(False, f"{name} cannot serve inference (capabilities.inference is false)")
    note = f"{name} is deprecated" if entry.spec.lifecycle == "deprecated" else None
    if entry.spec.engine == "upstream":
        return Verdict(True, note)
    if gpu_type is not None:
        try:
            gpu_memory_gib = gpus.memory_gib(gpu_type)
        except errors.RegistryError as exc:
            return Verdict(False, str(exc))
    if gpu_memory_gib is None:
        return Verdict(True, note)
    defaults = entry.spec.inference_defaults or model_entry.InferenceDefaults()
    utilization = gpu_memory_utilization or defaults.gpu_memory_utilization or 0.9
    tokens = max_model_len or defaults.max_model_len
    label = f"{gpu_count}x {gpu_type or f'{gpu_memory_gib:g} GiB GPU'}"
    if resolved.config:
        result = estimates.fit(
            resolved.config,
            gpu_memory_gib=gpu_memory_gib,
            gpus=gpu_count,
            gpu_memory_utilization=utilization,
            max_model_len=tokens,
        )
        text = f"{name} on {label}: {result.reason}"
        return Verdict(result.fits, f"{text}; {note}" if note and result.fits else text)
    needed = resolved.requirements.min_vram_gb
    if needed is None:
        return Verdict(True, _join(note, f"no requirements known for {name}: GPU memory not checked"))
    available = gpu_memory_gib * gpu_count
    if needed > available:
        return Verdict(
            False,
            f"{name} needs at least {needed:g} GiB of GPU memory (requirements.minVramGb) "
            f"but {label} has {available:g} GiB",
        )
    return Verdict(True, note)


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


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
