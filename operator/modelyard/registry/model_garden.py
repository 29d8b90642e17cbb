"""Model Garden's ``models_registry.json``: validated with the JSON schema we ship
(``schemas/models_registry.schema.json``), imported to and exported from ModelEntry objects.

Model Garden keys are snake_case and ours camelCase; ``lora_config`` is our ``lora``. Its
``provider`` (the model's vendor, e.g. ``unsloth``) and ``base_architecture`` (a family such as
``llama``) have no spec field: they travel as the labels ``modelyard.io/vendor`` and
``modelyard.io/family``, so an export gives back what was imported.
"""

from __future__ import annotations

import json
import pathlib
from functools import cache
from typing import Any

import jsonschema
from pydantic import alias_generators

from modelyard import api
from modelyard.api import wire
from modelyard.registry import errors, manifests

SCHEMA_PATH = pathlib.Path(__file__).with_name("schemas") / "models_registry.schema.json"

# Model Garden section -> our spec field, for the sections copied key by key.
_SECTIONS = {
    "quantization": "quantization",
    "requirements": "requirements",
    "capabilities": "capabilities",
    "inference_defaults": "inferenceDefaults",
}
_TRAINING_KEYS = {
    "hyperparameters": "hyperparameters",
    "lora_config": "lora",
    "selective_loss": "selectiveLoss",
}


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


def validate(data: Any, source: str) -> None:
    """Raise CatalogError listing every schema violation with its JSON path."""
    validator = jsonschema.Draft202012Validator(schema())
    problems = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = "".join(f"[{p!r}]" if isinstance(p, str) and "/" in p else f".{p}" for p in err.absolute_path)
        problems.append(f"{path.lstrip('.') or '(top)'}: {err.message}")
    if problems:
        raise errors.CatalogError(source, problems)


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {alias_generators.to_camel(k): _camel(v) for k, v in value.items() if v is not None}
    return value


def _snake(value: Any) -> Any:
    if isinstance(value, dict):
        return {alias_generators.to_snake(k): _snake(v) for k, v in value.items() if v is not None}
    return value


def to_entry(model: dict[str, Any]) -> api.ModelEntry:
    labels = {
        label: model[key]
        for key, label in (("provider", wire.VENDOR), ("base_architecture", wire.FAMILY))
        if model.get(key)
    }
    spec: dict[str, Any] = {
        "source": {"provider": "huggingface", "repo": model["id"]},
        "servedName": model["id"],
        "displayName": model["name"],
        "category": model["category"],
    }
    for key, field in (
        ("architecture", "architecture"),
        ("parameters", "parameters"),
        ("description", "description"),
    ):
        if model.get(key):
            spec[field] = model[key]
    if model.get("tags"):
        spec["tags"] = list(model["tags"])
    if model.get("status"):
        spec["lifecycle"] = model["status"]
    for key, field in _SECTIONS.items():
        section = _camel(model.get(key) or {})
        if section:
            spec[field] = section
    training = model.get("training_defaults") or {}
    defaults = {
        ours: _camel(training[theirs]) for theirs, ours in _TRAINING_KEYS.items() if training.get(theirs)
    }
    if defaults:
        spec["trainingDefaults"] = defaults
    if model.get("urls"):
        spec["urls"] = dict(model["urls"])
    metadata: dict[str, Any] = {"name": manifests.k8s_name(model["id"])}
    if labels:
        metadata["labels"] = labels
    return api.ModelEntry.model_validate({"metadata": metadata, "spec": spec})


def from_entry(entry: api.ModelEntry) -> dict[str, Any]:
    """A ModelEntry as a Model Garden registry entry."""
    spec = entry.to_wire()["spec"]
    labels = entry.metadata.labels or {}
    ident = spec.get("servedName") or spec["source"].get("repo") or entry.name
    out: dict[str, Any] = {
        "id": ident,
        "name": spec.get("displayName") or ident,
        "category": spec.get("category", "text-llm"),
    }
    if wire.VENDOR in labels:
        out["provider"] = labels[wire.VENDOR]
    if wire.FAMILY in labels:
        out["base_architecture"] = labels[wire.FAMILY]
    for field, key in (
        ("architecture", "architecture"),
        ("parameters", "parameters"),
        ("description", "description"),
    ):
        if field in spec:
            out[key] = spec[field]
    if "tags" in spec:
        out["tags"] = spec["tags"]
    out["status"] = spec.get("lifecycle", "stable")
    for key, field in _SECTIONS.items():
        if field in spec:
            out[key] = _snake(spec[field])
    training = spec.get("trainingDefaults") or {}
    if training:
        out["training_defaults"] = {
            theirs: _snake(training[ours]) for theirs, ours in _TRAINING_KEYS.items() if ours in training
        }
    if "urls" in spec:
        out["urls"] = spec["urls"]
    return out


def load(path: pathlib.Path) -> list[api.ModelEntry]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise errors.CatalogError(str(path), [f"not valid JSON: {exc}"]) from None
    return parse(data, str(path))


def parse(data: Any, source: str) -> list[api.ModelEntry]:
    validate(data, source)
    problems = [
        f"models[{key!r}]: key differs from id {m['id']!r}"
        for key, m in data["models"].items()
        if key != m["id"]
    ]
    if problems:
        raise errors.CatalogError(source, problems)
    return [to_entry(m) for m in data["models"].values()]


def dump(entries: list[api.ModelEntry]) -> str:
    models = {m["id"]: m for m in (from_entry(e) for e in entries)}
    return json.dumps({"models": models}, indent=2, ensure_ascii=False) + "\n"
