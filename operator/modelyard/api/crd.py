"""Generate the CustomResourceDefinitions from the pydantic models: one source per schema.

pydantic's JSON schema is turned into a Kubernetes *structural* schema: every ``$ref`` is
inlined, ``Optional[X]`` becomes ``X`` (absent means unset), free-form objects get
``x-kubernetes-preserve-unknown-fields``, docstrings become descriptions (for ``kubectl
explain``) and each model's :class:`~modelyard.api.base.Rule` becomes a CEL rule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pydantic
import yaml

from modelyard.api import base, model_endpoint, model_entry, training_job, wire

CATEGORY = "modelyard"

# Keywords a structural schema may carry over from JSON schema as they are.
_KEPT = (
    "description",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "format",
    "default",
)


@dataclass(frozen=True)
class Kind:
    """What a CRD needs beyond the schema."""

    model: type[base.Resource]
    plural: str
    short_names: tuple[str, ...]
    scope: str
    columns: tuple[dict[str, Any], ...]
    scale: dict[str, str] | None = None
    """The /scale subresource's paths (an HPA or KEDA drives the kind through it)."""


def _column(name: str, path: str, type_: str = "string", priority: int = 0, **extra: Any) -> dict[str, Any]:
    column = {"name": name, "type": type_, "jsonPath": path, **extra}
    if priority:
        column["priority"] = priority
    return column


_AGE = _column("Age", ".metadata.creationTimestamp", "date")

KINDS: tuple[Kind, ...] = (
    Kind(
        model=model_entry.ModelEntry,
        plural=wire.MODEL_ENTRIES,
        short_names=("me", "mentry"),
        scope="Cluster",
        columns=(
            _column("Served", ".status.servedName"),
            _column("Category", ".status.category"),
            _column("Architecture", ".status.architecture"),
            _column("Engine", ".spec.runtime.engine"),
            _column("Lifecycle", ".spec.lifecycle", priority=1),
            _column("Phase", ".status.phase"),
            _column("Reason", ".status.reason", priority=1),
            _AGE,
        ),
    ),
    Kind(
        model=model_endpoint.ModelEndpoint,
        plural=wire.MODEL_ENDPOINTS,
        short_names=("mep", "mendpoint"),
        scope="Namespaced",
        columns=(
            _column("Model", ".spec.model"),
            _column("Served", ".status.servedName"),
            _column("Weight", ".spec.weight", "integer"),
            _column("Ready", ".status.ready"),
            _column("Adapters", ".status.adaptersReady", description="adapters loaded/desired"),
            _column("Desired", ".status.autoscaling.desiredReplicas", "integer"),
            _column("Current", ".status.autoscaling.currentReplicas", "integer"),
            _column("Demand", ".status.autoscaling.demand", "number"),
            _column("Phase", ".status.phase"),
            _column("Reason", ".status.reason", priority=1),
            _column("Scaled", ".status.autoscaling.lastScaleReason", priority=1),
            _column("URL", ".status.url", priority=1),
            _AGE,
        ),
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    ),
    Kind(
        model=training_job.TrainingJob,
        plural=wire.TRAINING_JOBS,
        short_names=("tj", "tjob"),
        scope="Namespaced",
        columns=(
            _column("Model", ".spec.model"),
            _column("Method", ".spec.method"),
            _column("Phase", ".status.phase"),
            _column("Progress", ".status.progress.percent", "integer", description="percent done"),
            _column("Loss", ".status.progress.loss", "number"),
            _column("Registered", ".status.registeredModel", priority=1),
            _column("Served", ".status.servedAt", priority=1),
            _AGE,
        ),
    ),
)


def _rules_by_title(model: type[pydantic.BaseModel], out: dict[str, tuple[base.Rule, ...]]) -> None:
    """Collect every model's rules keyed by its JSON-schema title (the class name)."""
    rules: tuple[base.Rule, ...] = getattr(model, "rules", ())
    if rules:
        out[model.__name__] = rules
    for field in model.model_fields.values():
        for arg in _types_in(field.annotation):
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel) and arg.__name__ not in out:
                _rules_by_title(arg, out)


def _types_in(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    found: list[Any] = []
    for arg in args:
        found.extend(_types_in(arg))
    return found


def _structural(
    node: dict[str, Any], defs: dict[str, Any], rules: dict[str, tuple[base.Rule, ...]]
) -> dict[str, Any]:
    """One JSON-schema node as a structural-schema node."""
    description = node.get("description")
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        resolved = _structural(copy.deepcopy(defs[name]), defs, rules)
        if description:
            resolved["description"] = description
        return resolved
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node}")
        merged = {**options[0], **{k: v for k, v in node.items() if k not in ("anyOf", "title")}}
        if merged.get("default", 0) is None:
            merged.pop("default")
        return _structural(merged, defs, rules)

    out: dict[str, Any] = {}
    kind = node.get("type")
    if kind is None and "const" in node:
        kind = "string"
        out["enum"] = [node["const"]]
    if kind is None:
        out["x-kubernetes-preserve-unknown-fields"] = True
    else:
        out["type"] = kind
    for key in _KEPT:
        if key == "description" and key in node:
            out[key] = " ".join(str(node[key]).split())
        elif key in node and not (key == "default" and isinstance(node[key], (dict, list))):
            out[key] = node[key]
    # JSON schema's numeric exclusive bounds are OpenAPI 3.0 booleans next to the bound.
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(exclusive), int | float) and not isinstance(node.get(exclusive), bool):
            out[bound] = node[exclusive]
            out[exclusive] = True
    if kind == "object":
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if properties:
            out["properties"] = {k: _structural(v, defs, rules) for k, v in properties.items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        elif isinstance(extra, dict) and extra.get("type") in ("string", "integer", "number", "boolean"):
            out["additionalProperties"] = {"type": extra["type"]}
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
        title = node.get("title")
        if title in rules and properties:
            out["x-kubernetes-validations"] = [
                {"rule": r.cel, "message": r.message, **({"fieldPath": r.field_path} if r.field_path else {})}
                for r in rules[title]
            ]
    elif kind == "array":
        out["items"] = _structural(node.get("items", {}), defs, rules)
    return out


def schema_for(model: type[base.Resource]) -> dict[str, Any]:
    """The openAPIV3Schema of one resource."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    rules: dict[str, tuple[base.Rule, ...]] = {}
    _rules_by_title(model, rules)
    schema = _structural(raw, defs, rules)
    props = schema["properties"]
    # apiVersion, kind and metadata are the API server's: keep them plain.
    props["apiVersion"] = {"type": "string", "description": props["apiVersion"].get("description", "")}
    props["kind"] = {"type": "string", "description": props["kind"].get("description", "")}
    props["metadata"] = {"type": "object"}
    schema["required"] = ["spec"]
    schema["description"] = (model.__doc__ or "").strip()
    return schema


def crd_for(kind: Kind) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of one kind."""
    name = kind.model.model_fields["kind"].default
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{wire.GROUP}",
            "labels": {wire.PART_OF: wire.PRODUCT},
        },
        "spec": {
            "group": wire.GROUP,
            "scope": kind.scope,
            "names": {
                "kind": name,
                "listKind": f"{name}List",
                "plural": kind.plural,
                "singular": name.lower(),
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": wire.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, **({"scale": dict(kind.scale)} if kind.scale else {})},
                    "additionalPrinterColumns": list(kind.columns),
                    "schema": {"openAPIV3Schema": schema_for(kind.model)},
                }
            ],
        },
    }


def render() -> dict[str, str]:
    """File name -> YAML text of every CRD, deterministic."""
    files: dict[str, str] = {}
    for kind in KINDS:
        header = "# GENERATED by `modelyard crds generate` from modelyard.api: do not edit.\n"
        files[f"{wire.GROUP}_{kind.plural}.yaml"] = header + yaml.safe_dump(
            crd_for(kind), sort_keys=True, width=100, allow_unicode=True
        )
    return files
