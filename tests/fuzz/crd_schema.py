"""Strategies derived from the generated CRDs: a valid object of each kind, and one field of it
turned bad in a way its ``openAPIV3Schema`` forbids, with what the API server must say.

The schema is read from ``crds/`` (generated from ``operator/modelyard/api``), so a new field,
bound, enum or pattern is fuzzed without changing this module. A :class:`Mutation` carries the
object, the field path as the API server prints it (``spec.adapters[0].uri``) and words the
denial must contain to tell the user what is allowed (the bound, an allowed value, the
pattern, the expected type).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
GROUP = "modelyard.io"
VERSION = "v1alpha1"

Schema = dict[str, Any]
PathT = tuple[str | int, ...]


def load_schemas() -> dict[str, tuple[str, bool, Schema]]:
    """kind -> (plural, namespaced, spec schema)."""
    found: dict[str, tuple[str, bool, Schema]] = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        names = crd["spec"]["names"]
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == VERSION]
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        found[names["kind"]] = (names["plural"], crd["spec"]["scope"] == "Namespaced", spec)
    return found


SCHEMAS = load_schemas()

# A value that fullmatches each pattern the CRDs use (a new pattern must be added here).
VALID_FOR_PATTERN = {
    "^[-._a-zA-Z][-._a-zA-Z0-9]*$": "FUZZ_VAR",
    "^(pvc|s3|file)://.+": "file:///fuzz",
    "^(pvc|s3|file|hf)://.+": "file:///fuzz",
    "^(pvc|s3|file|hf|https?)://.+": "file:///fuzz",
    "^https?://.+": "https://upstream.invalid/v1",
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$": "fuzz",
    "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$": "local",
    "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$": "fuzz.out",
    "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$": "1",
    "^(auto|float16|bfloat16|float32|half|float)$": "auto",
    "^\\d+(\\.\\d+)?[KMBT]$": "1B",
    "^\\d+\\.\\d+$": "8.0",
    "^(True|False|Unknown)$": "True",
    "^[A-Za-z_][\\w.]*$": "fuzz.Handler",
    "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$": "X-Session-Id",
}

# The smallest valid spec of each kind; its model names no entry (the webhook only warns).
BASES: dict[str, dict[str, Any]] = {
    "ModelEntry": {"source": {"provider": "local", "uri": "file:///fuzz"}},
    "ModelEndpoint": {"model": "fuzz-no-such-entry", "replicas": 0},
    "TrainingJob": {
        "model": "fuzz-no-such-entry",
        "dataset": {"uri": "file:///fuzz/train.jsonl"},
        "output": {"uri": "file:///fuzz/out"},
    },
}


def go_match(pattern: str, text: str) -> bool:
    """Whether Go's RE2 (the API server's) finds ``pattern`` in ``text``: ``$`` is the very end,
    ``\\d`` and ``\\w`` are ASCII."""
    translated = re.sub(r"\$$", r"\\Z", pattern)
    return re.search(translated, text, re.ASCII) is not None


def minimal(schema: Schema) -> Any:
    """A valid value for ``schema`` (required properties only)."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        return {name: minimal(schema["properties"][name]) for name in schema.get("required", [])}
    if kind == "array":
        return [minimal(schema["items"]) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        if "pattern" in schema:
            return VALID_FOR_PATTERN[schema["pattern"]]
        return "x" * max(1, schema.get("minLength", 0))
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1) if schema.get("maximum", 1) >= 1 else schema["maximum"]
    if kind == "number":
        return 0.5 if schema.get("maximum", 1) >= 0.5 else schema["maximum"]
    if kind == "boolean":
        return False
    raise ValueError(f"no minimal value for {schema}")


def fields(schema: Schema, path: PathT = ()) -> list[tuple[PathT, Schema]]:
    """(path, schema) of ``schema`` and every property below it; arrays step into their first
    item. Free-form maps (additionalProperties) are leaves."""
    out: list[tuple[PathT, Schema]] = [(path, schema)]
    for name, sub in sorted(schema.get("properties", {}).items()):
        here = (*path, name)
        if sub.get("type") == "object" and "properties" in sub:
            out.extend(fields(sub, here))
        elif sub.get("type") == "array" and sub["items"].get("type") == "object":
            out.append((here, sub))
            out.extend(fields(sub["items"], (*here, 0)))
        else:
            out.append((here, sub))
    return out


FIELDS = {kind: fields(spec) for kind, (_, _, spec) in SCHEMAS.items()}


def put(spec: dict[str, Any], schema: Schema, path: PathT, value: Any) -> dict[str, Any]:
    """A copy of ``spec`` with ``value`` at ``path``, creating minimal parents on the way."""
    if not path:
        return copy.deepcopy(value)  # type: ignore[no-any-return]
    out = copy.deepcopy(spec)
    node: Any = out
    sub = schema
    for step, nxt in itertools.pairwise(path):
        sub = sub["items"] if isinstance(step, int) else sub["properties"][step]
        if isinstance(step, int):
            while len(node) <= step:
                node.append(minimal(sub))
        elif step not in node or not isinstance(node[step], dict | list):
            node[step] = [] if isinstance(nxt, int) else minimal(sub)
        node = node[step]
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value
    return out


def at(spec: dict[str, Any], path: PathT) -> Any:
    """The value at ``path`` in ``spec`` (a copy), or None."""
    node: Any = spec
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return copy.deepcopy(node)


def printed(path: PathT) -> str:
    """The path as the API server prints it: ``spec.adapters[0].uri``."""
    text = "spec"
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text


@dataclasses.dataclass(frozen=True)
class Mutation:
    kind: str
    spec: dict[str, Any]
    path: str
    """Field path the denial must name."""
    what: str
    """How the field was broken (for the failure message)."""
    allowed: tuple[str, ...]
    """The denial must contain at least one of these (what is allowed)."""

    def manifest(self, name: str, namespace: str) -> str:
        meta: dict[str, str] = {"name": name}
        if SCHEMAS[self.kind][1]:
            meta["namespace"] = namespace
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": self.kind, "metadata": meta, "spec": self.spec}
        return json.dumps(body)


_TYPE_WORDS = {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean",
               "object": "object", "array": "array"}  # fmt: skip

_JUNK_BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=20),
    "integer": st.integers(-(2**40), 2**40),
    "float": st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)),
    "boolean": st.booleans(),
    "object": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), min_size=1, max_size=2),
    "array": st.lists(st.integers(0, 3), min_size=1, max_size=2),
}


def _wrong_types(json_type: str) -> list[str]:
    """JSON types a value of ``json_type`` may not take (an integer is a valid number)."""
    bad = {"string": ["integer", "float", "boolean", "object", "array"],
           "integer": ["string", "float", "boolean", "object", "array"],
           "number": ["string", "boolean", "object", "array"],
           "boolean": ["string", "integer", "object", "array"],
           "object": ["string", "integer", "boolean", "array"],
           "array": ["string", "integer", "boolean", "object"]}  # fmt: skip
    return bad[json_type]


@st.composite
def schema_mutations(draw: st.DrawFn, kind: str | None = None) -> Mutation:
    """One field of a valid object broken against its schema."""
    kind = kind or draw(st.sampled_from(sorted(SCHEMAS)))
    schema = SCHEMAS[kind][2]
    base = BASES[kind]
    path, sub = draw(st.sampled_from(FIELDS[kind]))
    options = ["type"]
    json_type = sub.get("type", "object")
    if "minimum" in sub or "maximum" in sub:
        options.append("range")
    if "enum" in sub:
        options.append("enum")
    if "pattern" in sub:
        options.append("pattern")
    if "maxLength" in sub or sub.get("minLength", 0) > 0:
        options.append("length")
    if "maxItems" in sub:
        options.append("items")
    if json_type == "object" and "properties" in sub:
        options.append("unknown")
    how = draw(st.sampled_from(options))
    where = printed(path)
    if how == "type":
        wrong = draw(st.sampled_from(_wrong_types(json_type)))
        value = draw(_JUNK_BY_TYPE[wrong])
        # the API server prunes the keys of an object where a scalar belongs: strict decoding
        # then reports them as unknown fields under the path
        allowed = (json_type, "unknown field") if wrong == "object" else (json_type,)
        return Mutation(kind, put(base, schema, path, value), where, f"{wrong} {value!r}", allowed)
    if how == "range":
        choices = []
        if "minimum" in sub:
            low = sub["minimum"]
            below = (
                draw(st.integers(-(2**40), low - 1))
                if json_type == "integer"
                else draw(st.floats(-1e9, low, exclude_max=not sub.get("exclusiveMinimum", False)))
            )
            choices.append((below, str(low)))
        if "maximum" in sub:
            high = sub["maximum"]
            above = (
                draw(st.integers(high + 1, 2**40))
                if json_type == "integer"
                else draw(st.floats(high, 1e9, exclude_min=not sub.get("exclusiveMaximum", False)))
            )
            choices.append((above, str(high)))
        value, bound = draw(st.sampled_from(choices))
        if json_type == "number":
            bound = bound.rstrip("0").rstrip(".") if "." in bound else bound
        return Mutation(kind, put(base, schema, path, value), where, f"out of range {value!r}", (bound,))
    if how == "enum":
        value = draw(st.text(min_size=1, max_size=12).filter(lambda s: s not in sub["enum"]))
        return Mutation(kind, put(base, schema, path, value), where, f"not in enum {value!r}",
                        tuple(sub["enum"]))  # fmt: skip
    if how == "pattern":
        pattern = sub["pattern"]
        value = draw(st.text(min_size=1, max_size=16).filter(lambda s: not go_match(pattern, s)))
        return Mutation(kind, put(base, schema, path, value), where, f"not matching {value!r}", (pattern,))
    if how == "length":
        if "maxLength" in sub and (sub.get("minLength", 0) == 0 or draw(st.booleans())):
            n = sub["maxLength"]
            value = "a" * draw(st.integers(n + 1, n + 300))
            return Mutation(kind, put(base, schema, path, value), where, f"{len(value)} chars", (str(n),))
        return Mutation(kind, put(base, schema, path, ""), where, "empty", (str(sub["minLength"]),))
    if how == "items":
        n = sub["maxItems"]
        items = [minimal(sub["items"]) for _ in range(n + draw(st.integers(1, 3)))]
        if sub["items"].get("type") == "string":
            items = [f"i{i}" for i in range(len(items))]
        return Mutation(kind, put(base, schema, path, items), where, f"{len(items)} items", (str(n),))
    # unknown field: a key the object does not declare
    known = set(sub["properties"])
    extra = draw(st.from_regex(r"\A[a-z][a-zA-Z0-9]{0,12}\Z").filter(lambda k: k not in known))
    obj = at(base, path) or minimal(sub)
    obj[extra] = draw(st.integers(0, 9) | st.text(max_size=5))
    return Mutation(kind, put(base, schema, path, obj), f"{where}.{extra}", f"unknown field {extra}",
                    ("unknown field",))  # fmt: skip
