"""Every generated CRD is a structural schema, as the API server requires for v1 CRDs.

The rules checked (Kubernetes "Specifying a structural schema"): every node states a type
(unless it preserves unknown fields or is int-or-string); no ``$ref``; ``anyOf``/``oneOf``/
``allOf``/``not`` never carry a type, description or default; ``additionalProperties`` and
``properties`` are not used together; every field has a description for ``kubectl explain``.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from modelyard.api import crd

_LOGIC = ("anyOf", "oneOf", "allOf", "not")


def _walk(node: dict[str, Any], path: str, problems: list[str], *, needs_description: bool) -> None:
    if "$ref" in node or "$defs" in node:
        problems.append(f"{path}: $ref/$defs")
    free = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
    if "type" not in node and not free:
        problems.append(f"{path}: no type")
    for key in _LOGIC:
        if key in node:
            problems.append(f"{path}: {key} not expected in generated schemas")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties and additionalProperties together")
    if needs_description and not node.get("description"):
        problems.append(f"{path}: no description")
    for name, child in node.get("properties", {}).items():
        _walk(child, f"{path}.{name}", problems, needs_description=name != "metadata")
    if "items" in node:
        _walk(node["items"], f"{path}[]", problems, needs_description=False)
    if isinstance(node.get("additionalProperties"), dict):
        _walk(node["additionalProperties"], f"{path}{{}}", problems, needs_description=False)


@pytest.mark.parametrize("name", sorted(crd.render()))
def test_schema_is_structural_and_described(name: str) -> None:
    obj = yaml.safe_load(crd.render()[name])
    schema = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    problems: list[str] = []
    _walk(schema, obj["spec"]["names"]["kind"], problems, needs_description=True)
    assert problems == []


def test_cel_rules_are_emitted_where_models_declare_them() -> None:
    endpoint = yaml.safe_load(crd.render()["modelyard.io_trainingjobs.yaml"])
    dataset = endpoint["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["dataset"]
    rules = [r["rule"] for r in dataset["x-kubernetes-validations"]]
    assert rules == ["has(self.uri) != has(self.configMap)"]


def test_weight_and_replicas_bounds_are_schema_limits() -> None:
    obj = yaml.safe_load(crd.render()["modelyard.io_modelendpoints.yaml"])
    spec = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert (spec["weight"]["minimum"], spec["weight"]["maximum"]) == (0, 1000)
    assert spec["replicas"]["minimum"] == 0
