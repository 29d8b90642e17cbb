"""Read and write custom-resource manifests (multi-document YAML), with errors that name the
document, the object and the field."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

import pydantic
import yaml

from modelyard import api
from modelyard.api import base, wire
from modelyard.registry import errors


def field_errors(exc: pydantic.ValidationError, prefix: str = "") -> list[str]:
    """One ``path: message`` line per pydantic error, paths in wire (camelCase) form."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"])
        path = path.replace(".[", "[")
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
            message = f"must be one of {err['ctx']['expected']}"
        lines.append(f"{prefix}{path}: {message}" if path else f"{prefix}{message}")
    return lines


def parse_resource(doc: Any, where: str) -> base.Resource:
    """Validate one manifest as the modelyard kind it names."""
    if not isinstance(doc, dict):
        raise errors.CatalogError(where, [f"expected a mapping, got {type(doc).__name__}"])
    kind = doc.get("kind")
    model = api.KINDS.get(str(kind))
    if model is None:
        known = ", ".join(sorted(api.KINDS))
        raise errors.CatalogError(where, [f"kind: {kind!r} is not a modelyard kind (one of {known})"])
    if doc.get("apiVersion") != wire.API_VERSION:
        raise errors.CatalogError(
            where, [f"apiVersion: expected {wire.API_VERSION}, got {doc.get('apiVersion')!r}"]
        )
    # status and server-set metadata are not the author's: ignore them when reading a file.
    doc = {k: v for k, v in doc.items() if k != "status"}
    try:
        return model.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise errors.CatalogError(where, field_errors(exc)) from None


def describe(doc: Any, index: int) -> str:
    """``Kind/name (document N)``, or ``document N`` when the document has no kind and name."""
    metadata = doc.get("metadata") if isinstance(doc, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind = doc.get("kind") if isinstance(doc, dict) else None
    return f"{kind}/{name} (document {index})" if kind and name else f"document {index}"


def load_resources(text: str, source: str) -> list[base.Resource]:
    """Every modelyard object in a YAML stream; all problems reported together."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise errors.CatalogError(source, [f"not valid YAML: {exc}"]) from None
    found: list[base.Resource] = []
    problems: list[str] = []
    for index, doc in enumerate(docs, start=1):
        where = describe(doc, index)
        try:
            found.append(parse_resource(doc, where))
        except errors.CatalogError as exc:
            problems.extend(f"{where}: {p}" for p in exc.problems)
    if problems:
        raise errors.CatalogError(source, problems)
    return found


def load_entries(path: pathlib.Path) -> list[api.ModelEntry]:
    """The ModelEntry objects of a manifest file (other kinds are an error here)."""
    resources = load_resources(path.read_text(), str(path))
    wrong = [
        f"{r.kind}/{r.name}: expected ModelEntry" for r in resources if not isinstance(r, api.ModelEntry)
    ]
    if wrong:
        raise errors.CatalogError(str(path), wrong)
    return [r for r in resources if isinstance(r, api.ModelEntry)]


def dump(resources: Iterable[base.Resource]) -> str:
    """Resources as a multi-document YAML stream, keys in a stable order."""
    docs: Sequence[dict[str, Any]] = [r.to_wire() for r in resources]
    return yaml.safe_dump_all(docs, sort_keys=False, width=110, allow_unicode=True, explicit_start=True)


def k8s_name(text: str) -> str:
    """A DNS-1123 object name for a model id: ``Qwen/Qwen3-4B_FP8`` -> ``qwen-qwen3-4b-fp8``."""
    out = []
    for ch in text.lower():
        out.append(ch if ch.isalnum() or ch in "-." else "-")
    name = "".join(out).strip("-.")
    while "--" in name:
        name = name.replace("--", "-")
    return name[:253].rstrip("-.") or "model"
