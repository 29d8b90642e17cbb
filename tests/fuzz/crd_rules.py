"""Strategies for objects that pass the schema's types but break a CEL rule (``x-kubernetes-
validations``, declared once as :class:`modelyard.api.base.Rule`), and odd-but-valid objects
the operator must cope with.

:data:`VIOLATIONS` maps every rule of the API models to a strategy for a spec breaking it and
the path the API server reports it at; a test checks that no rule is missing.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from modelyard import api
from modelyard.api import base, model_endpoint, model_entry, training_job

NAMES = st.text(string.ascii_lowercase + string.digits + "-./", min_size=1, max_size=20)
PROVIDERS = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z").filter(lambda p: p != "upstream")
SOURCE = {"provider": "local", "uri": "file:///fuzz"}


@dataclasses.dataclass(frozen=True)
class Violation:
    kind: str
    spec: dict[str, Any]
    path: str
    """Where the API server reports the rule (the object's path plus the rule's field_path)."""
    rule: base.Rule


def _rule(model: type[base.ApiModel], index: int = 0) -> base.Rule:
    return model.rules[index]


@st.composite
def _fallback_names_itself(draw: st.DrawFn) -> dict[str, Any]:
    served = draw(NAMES)
    others = draw(st.lists(NAMES.filter(lambda n: n != served), max_size=4, unique=True))
    position = draw(st.integers(0, len(others)))
    fallback = [*others[:position], served, *others[position:]]
    return {"model": "fuzz-no-such-entry", "replicas": 0, "servedName": served, "fallback": fallback}


@st.composite
def _source_without_location(draw: st.DrawFn) -> dict[str, Any]:
    source: dict[str, Any] = {"provider": draw(PROVIDERS)}
    if draw(st.booleans()):
        source["revision"] = draw(NAMES)
    return {"source": source}


@st.composite
def _config_both(draw: st.DrawFn) -> dict[str, Any]:
    inline = draw(st.dictionaries(st.sampled_from(["architectures", "hidden_size", "x"]), st.integers(0, 9)))
    ref = {"name": draw(NAMES.filter(lambda n: n[0].isalnum())), "key": "config.json"}
    return {"source": SOURCE, "config": {"inline": inline, "configMapRef": ref}}


@st.composite
def _recommended_below_min(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.floats(1, 10_000, allow_nan=False))
    recommended = draw(st.floats(0, low, exclude_max=True))
    return {"source": SOURCE, "requirements": {"minVramGb": low, "recommendedVramGb": recommended}}


@st.composite
def _upstream_engine_without_upstream(draw: st.DrawFn) -> dict[str, Any]:
    runtime: dict[str, Any] = {"engine": "upstream"}
    if draw(st.booleans()):
        runtime["handler"] = "fuzz.Handler"
    return {"source": {"provider": draw(st.sampled_from(["upstream", "local"])), "uri": "file:///x"},
            "runtime": runtime}  # fmt: skip


@st.composite
def _upstream_without_engine(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": SOURCE, "upstream": {"baseUrl": "https://upstream.invalid/v1"}}
    engine = draw(st.sampled_from([None, "vllm", "transformers"]))
    if engine is not None:
        spec["runtime"] = {"engine": engine}
    return spec


@st.composite
def _dataset_not_exactly_one(draw: st.DrawFn) -> dict[str, Any]:
    dataset: dict[str, Any] = {"format": draw(st.sampled_from(["auto", "chat", "instruction", "text"]))}
    if draw(st.booleans()):
        dataset["uri"] = "file:///fuzz/train.jsonl"
        dataset["configMap"] = {"name": "data", "key": "train.jsonl"}
    return {"model": "fuzz-no-such-entry", "dataset": dataset, "output": {"uri": "file:///fuzz/out"}}


@st.composite
def _lora_rank_too_large(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "model": "fuzz-no-such-entry",
        "method": draw(st.sampled_from(["lora", "qlora"])),
        "lora": {"r": draw(st.integers(1025, 2**31 - 1))},
        "dataset": {"uri": "file:///fuzz/train.jsonl"},
        "output": {"uri": "file:///fuzz/out"},
    }


@st.composite
def _min_above_max(draw: st.DrawFn) -> dict[str, Any]:
    most = draw(st.integers(1, 999))
    return {
        "model": "fuzz-no-such-entry",
        "replicas": 0,
        "autoscaling": {"minReplicas": draw(st.integers(most + 1, 1000)), "maxReplicas": most},
    }


ADAPTER_NAMES = st.from_regex(r"\A[a-z][a-z0-9-]{0,15}\Z")


@st.composite
def _adapter_names_repeat(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(ADAPTER_NAMES)
    items = [{"name": name, "uri": f"file:///fuzz/{i}"} for i in range(draw(st.integers(2, 4)))]
    return {"model": "fuzz-no-such-entry", "replicas": 0, "adapters": items}


@st.composite
def _adapter_named_like_endpoint(draw: st.DrawFn) -> dict[str, Any]:
    served = draw(ADAPTER_NAMES)
    return {
        "model": "fuzz-no-such-entry",
        "replicas": 0,
        "servedName": served,
        "adapters": [{"name": served, "uri": "file:///fuzz/a"}],
    }


@st.composite
def _adapter_not_exactly_one(draw: st.DrawFn) -> dict[str, Any]:
    adapter: dict[str, Any] = {"name": draw(ADAPTER_NAMES)}
    if draw(st.booleans()):
        adapter |= {"entry": "fuzz-entry", "uri": "file:///fuzz/a"}
    return {"model": "fuzz-no-such-entry", "replicas": 0, "adapters": [adapter]}


def _job(output: dict[str, Any], method: str = "lora") -> dict[str, Any]:
    return {"model": "fuzz-no-such-entry", "method": method, "dataset": {"uri": "file:///fuzz/train.jsonl"},
            "output": output}  # fmt: skip


@st.composite
def _serve_on_remote_output(draw: st.DrawFn) -> dict[str, Any]:
    return _job({"uri": f"s3://{draw(ADAPTER_NAMES)}/out", "serveOn": {"endpoint": "chat"}})


@st.composite
def _serve_on_full(draw: st.DrawFn) -> dict[str, Any]:
    return _job({"uri": "file:///fuzz/out", "serveOn": {"endpoint": draw(ADAPTER_NAMES)}}, method="full")


Case = tuple[str, str, base.Rule, Callable[[], st.SearchStrategy[dict[str, Any]]]]

CASES: list[Case] = [
    ("ModelEndpoint", "spec", _rule(model_endpoint.ModelEndpointSpec), _fallback_names_itself),
    ("ModelEndpoint", "spec.autoscaling", _rule(model_endpoint.Autoscaling), _min_above_max),
    ("ModelEntry", "spec.source", _rule(model_entry.ModelSource), _source_without_location),
    ("ModelEntry", "spec.config", _rule(model_entry.ModelConfigSource), _config_both),
    ("ModelEntry", "spec.requirements", _rule(model_entry.Requirements), _recommended_below_min),
    ("ModelEntry", "spec", _rule(model_entry.ModelEntrySpec, 0), _upstream_engine_without_upstream),
    ("ModelEntry", "spec", _rule(model_entry.ModelEntrySpec, 1), _upstream_without_engine),
    ("TrainingJob", "spec.dataset", _rule(training_job.Dataset), _dataset_not_exactly_one),
    ("TrainingJob", "spec", _rule(training_job.TrainingJobSpec), _lora_rank_too_large),
    ("ModelEndpoint", "spec", _rule(model_endpoint.ModelEndpointSpec, 1), _adapter_names_repeat),
    ("ModelEndpoint", "spec", _rule(model_endpoint.ModelEndpointSpec, 2), _adapter_named_like_endpoint),
    ("ModelEndpoint", "spec.adapters[0]", _rule(model_endpoint.LoraAdapter), _adapter_not_exactly_one),
    ("TrainingJob", "spec.output", _rule(training_job.Output), _serve_on_remote_output),
    ("TrainingJob", "spec", _rule(training_job.TrainingJobSpec, 1), _serve_on_full),
]


def violations() -> st.SearchStrategy[Violation]:
    return st.one_of(
        *[
            make().map(lambda spec, k=kind, p=path, r=rule: Violation(k, spec, p + (r.field_path or ""), r))
            for kind, path, rule, make in CASES
        ]
    )


def all_rules() -> list[base.Rule]:
    """Every Rule declared on a model the CRDs are generated from."""
    seen: list[base.Rule] = []
    stack: list[type[base.ApiModel]] = [base.ApiModel]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        for rule in cls.__dict__.get("rules", ()):
            if rule not in seen:
                seen.append(rule)
    return seen


# Odd but valid: what a person may well apply, and the operator must give a status to.
ODD_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def odd_endpoints(draw: st.DrawFn, models: list[str]) -> dict[str, Any]:
    """A valid ModelEndpoint spec with unusual values (never runs a pod: replicas 0 or a GPU
    count no node has)."""
    spec: dict[str, Any] = {"model": draw(st.sampled_from(models))}
    spec["replicas"], gpus = draw(st.sampled_from([(0, None), (0, 0), (1, 64), (0, 7)]))
    if gpus is not None:
        spec["resources"] = {"gpus": gpus, "cpu": draw(st.sampled_from(["1", "500m", "0.5", "1e3"]))}
    optional = {
        "servedName": ODD_TEXT,
        "weight": st.integers(0, 1000),
        "engineArgs": st.dictionaries(st.text(min_size=1, max_size=12), JSONISH, max_size=4),
        "env": st.lists(
            st.fixed_dictionaries(
                {"name": st.from_regex(r"\A[-._a-zA-Z][-._a-zA-Z0-9]{0,20}\Z"), "value": st.text(max_size=30)}
            ),
            max_size=3,
            unique_by=lambda e: e["name"],
        ),
        "nodeSelector": st.dictionaries(
            st.from_regex(r"\A[a-z]([a-z0-9.-]{0,20}[a-z0-9])?\Z"),
            st.from_regex(r"\A[a-z0-9]{0,10}\Z"),
            max_size=2,
        ),
        "fallback": st.lists(ODD_TEXT, max_size=3, unique=True),
        "engine": st.sampled_from(["vllm", "transformers"]),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    if spec.get("servedName") in spec.get("fallback", []):
        spec["fallback"].remove(spec["servedName"])
    api.model_endpoint.ModelEndpointSpec.model_validate(spec)  # valid by construction
    return spec


CONFIG_KEYS = [
    "architectures", "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "vocab_size", "intermediate_size", "head_dim", "torch_dtype",
    "max_position_embeddings", "tie_word_embeddings", "quantization_config", "text_config",
    "vision_config", "num_experts", "num_local_experts", "d_model",
]  # fmt: skip
CONFIG_VALUES = (
    st.integers(-5, 100_000)
    | st.sampled_from([0, 2**63, "LlamaForCausalLM", "llama", "bfloat16", ["LlamaForCausalLM"], ["Bert"]])
    | JSONISH
)


@st.composite
def odd_entries(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ModelEntry spec whose inline config.json (free-form) is junk or half-right."""
    spec: dict[str, Any] = {
        "source": {"provider": "local", "uri": "file:///nonexistent/fuzz"},
        "config": {"inline": draw(st.dictionaries(st.sampled_from(CONFIG_KEYS), CONFIG_VALUES, max_size=8))},
    }
    optional = {
        "architecture": st.sampled_from(["LlamaForCausalLM", "BertModel", "Qwen3ForCausalLM", "NoSuchModel"]),
        "category": st.sampled_from(["text-llm", "embedding", "rerank"]),
        "servedName": ODD_TEXT,
        "tags": st.lists(ODD_TEXT, max_size=3),
        "inferenceDefaults": st.fixed_dictionaries({"maxModelLen": st.integers(1, 2**31)}),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    api.model_entry.ModelEntrySpec.model_validate(spec)  # valid by construction
    return spec


@st.composite
def odd_training_jobs(draw: st.DrawFn, models: list[str]) -> dict[str, Any]:
    """A valid TrainingJob spec with unusual values; its pod needs more GPUs than any node has,
    so no trainer process runs."""
    positive = st.floats(1e-12, 1e6, allow_nan=False)
    spec: dict[str, Any] = {
        "model": draw(st.sampled_from(models)),
        "method": draw(st.sampled_from(["lora", "qlora", "full"])),
        "dataset": draw(
            st.sampled_from(
                [
                    {"uri": "file:///nonexistent/train.jsonl"},
                    {"configMap": {"name": "absent", "key": "train.jsonl"}, "format": "chat"},
                ]
            )
        ),
        "output": {"uri": "file:///nonexistent/out"},
        "resources": {"gpus": 64},
    }
    optional = {
        "hyperparameters": st.fixed_dictionaries(
            {},
            optional={
                "learningRate": positive,
                "numEpochs": positive,
                "batchSize": st.integers(1, 2**31),
                "warmupSteps": st.integers(0, 2**31),
                "maxSteps": st.integers(1, 2**31),
                "optim": ODD_TEXT,
                "lrSchedulerType": ODD_TEXT,
                "seed": st.integers(-(2**63), 2**63),
            },
        ),
        "lora": st.fixed_dictionaries(
            {},
            optional={
                "r": st.integers(1, 1024),
                "loraAlpha": positive,
                "loraDropout": st.floats(0, 0.99),
                "targetModules": st.lists(ODD_TEXT, max_size=4),
            },
        ),
        "backoffLimit": st.integers(0, 100),
        "activeDeadlineSeconds": st.integers(1, 2**31),
        "ttlSecondsAfterFinished": st.integers(0, 2**31),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    if draw(st.booleans()):
        spec["output"]["register"] = {"name": draw(st.from_regex(r"\A[a-z0-9]([-a-z0-9.]{0,30}[a-z0-9])?\Z")),
                                      "servedName": draw(ODD_TEXT)}  # fmt: skip
    api.training_job.TrainingJobSpec.model_validate(spec)  # valid by construction
    return spec
