"""The built-in catalog is a set of valid ModelEntry manifests whose numbers hold together.

Every model of the model-server catalog and Model Garden's example is present once, under a
DNS-1123 name, with requirements at least as large as its weights and categories that agree
with its capabilities.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from modelyard import api
from modelyard.api import model_entry
from modelyard.registry import builtin

GIB = 1024**3
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMBT])$")
SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}

EXPECTED_REPOS = {
    # the model-server catalog (models.yaml)
    "BAAI/bge-m3",
    "google/embeddinggemma-300m",
    "Qwen/Qwen3-Embedding-0.6B",
    "Qwen/Qwen3-Embedding-4B",
    "Qwen/Qwen3-4B-Instruct-2507",
    "Qwen/Qwen3-4B-Instruct-2507-FP8",
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "Qwen/Qwen3-VL-2B-Instruct",
    "Qwen/Qwen3-VL-4B-Instruct",
    "Qwen/Qwen3-VL-2B-Instruct-FP8",
    "Qwen/Qwen3-VL-4B-Instruct-FP8",
    "openai/whisper-tiny",
    "openai/whisper-tiny.en",
    "openai/whisper-small",
    "openai/whisper-small.en",
    "openai/whisper-medium",
    "openai/whisper-medium.en",
    "openai/whisper-large-v2",
    "jethrowang/whisper-tiny-chinese",
    "Ivydata/whisper-small-japanese",
    "BELLE-2/Belle-whisper-large-v3-zh",
    # Model Garden's registry example
    "unsloth/tinyllama-bnb-4bit",
}


def _documents() -> list[Any]:
    return list(yaml.safe_load_all(builtin.CATALOG.read_text()))


def _entries() -> list[api.ModelEntry]:
    return [api.ModelEntry.model_validate(doc) for doc in _documents()]


ENTRIES = _entries()


def _id(entry: api.ModelEntry) -> str:
    return entry.name


def parameters(text: str) -> float:
    """``"568M"`` -> 568e6."""
    match = SIZE.match(text)
    assert match, f"parameters {text!r} is not like 568M or 4.0B"
    return float(match.group(1)) * SCALE[match.group(2)]


def bytes_per_param(entry: api.ModelEntry) -> float:
    """A lower bound on the bytes one weight takes when the entry is served."""
    spec = entry.spec
    method = (spec.quantization.method or "").lower() if spec.quantization else ""
    if method in {"4bit", "awq", "gptq"}:
        return 0.5
    if method in {"8bit", "fp8"}:
        return 1.0
    dtype = spec.inference_defaults.dtype if spec.inference_defaults else None
    return 4.0 if dtype in {"float32", "float"} else 2.0


def test_every_document_is_a_builtin_model_entry() -> None:
    docs = _documents()
    assert docs and all(isinstance(doc, dict) for doc in docs), "no empty or scalar documents"
    for doc in docs:
        assert doc["apiVersion"] == "modelyard.io/v1alpha1"
        assert doc["kind"] == "ModelEntry"
        entry = api.ModelEntry.model_validate(doc)
        assert entry.metadata.labels == {
            "app.kubernetes.io/part-of": "modelyard",
            "modelyard.io/catalog": "builtin",
        }


def test_names_are_unique_dns_1123_labels() -> None:
    names = [e.name for e in ENTRIES]
    assert len(names) == len(set(names))
    for name in names:
        assert len(name) <= 63 and DNS_1123_LABEL.match(name), name


def test_served_names_are_unique_repo_ids() -> None:
    served = [e.spec.resolved_served_name for e in ENTRIES]
    assert len(served) == len(set(served))
    for entry in ENTRIES:
        assert entry.spec.source.provider == "huggingface"
        assert entry.spec.served_name == entry.spec.source.repo
        assert entry.spec.urls == {"huggingface": f"https://huggingface.co/{entry.spec.source.repo}"}


def test_every_catalog_model_is_present() -> None:
    assert {e.spec.source.repo for e in ENTRIES} == EXPECTED_REPOS


def test_entries_are_ordered_by_category_then_size() -> None:
    order = model_entry.CATEGORIES
    keys = [(order.index(e.spec.category or "rerank"), parameters(e.spec.parameters or "")) for e in ENTRIES]
    assert keys == sorted(keys)


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_requirements_cover_the_weights(entry: api.ModelEntry) -> None:
    req = entry.spec.requirements
    assert req is not None
    assert req.min_vram_gb is not None and req.recommended_vram_gb is not None
    assert req.min_vram_gb <= req.recommended_vram_gb
    assert req.min_gpus == 1 and req.min_ram_gb is not None and req.cuda_compute_capability
    weights_gib = parameters(entry.spec.parameters or "") * bytes_per_param(entry) / GIB
    assert req.min_vram_gb >= weights_gib, f"{entry.name}: {req.min_vram_gb} GiB < weights {weights_gib:.2f}"
    assert req.min_vram_gb * 2 == int(req.min_vram_gb * 2), "minVramGb is rounded to half a GiB"


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_category_agrees_with_capabilities_and_runtime(entry: api.ModelEntry) -> None:
    spec, caps, runtime = entry.spec, entry.spec.capabilities, entry.spec.runtime
    assert caps is not None and runtime is not None and runtime.handler is None
    assert caps.inference
    assert caps.vision == (spec.category == "vision-vlm")
    chat = spec.category in ("text-llm", "vision-vlm")
    if not chat:
        assert not caps.training and spec.training_defaults is None
    assert caps.streaming == chat
    assert (spec.generation_defaults is not None) == chat
    assert runtime.engine == ("vllm" if chat else "transformers")
    assert (runtime.pooling is not None) == (spec.category == "embedding")
    if caps.training:
        defaults = spec.training_defaults
        assert defaults and defaults.hyperparameters and defaults.lora and defaults.selective_loss
        assert defaults.selective_loss.supported == (spec.category == "vision-vlm")


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_quantized_entries_name_their_engine_quantization(entry: api.ModelEntry) -> None:
    spec = entry.spec
    inference = spec.inference_defaults
    assert inference is not None and inference.max_model_len and inference.tensor_parallel_size == 1
    method = spec.quantization.method if spec.quantization else None
    expected = {None: None, "fp8": "fp8", "4bit": "bitsandbytes"}[method]
    assert inference.quantization == expected
    if method == "fp8":
        assert spec.requirements and spec.requirements.cuda_compute_capability == "8.9"
        assert "quantized" in (spec.tags or [])


TOOL_PARSERS = {"qwen": "hermes", "qwen-vl": "hermes", "llama": "llama3_json", "mistral": "mistral"}
"""The vLLM tool-call parser of each family's instruct models (their chat templates' format)."""


def test_instruct_chat_models_carry_their_family_s_tool_call_parser() -> None:
    from modelyard.registry import architectures

    chat = [e for e in ENTRIES if e.spec.category in ("text-llm", "vision-vlm") and "instruct" in e.name]
    assert chat, "no instruct chat model in the catalog"
    for e in chat:
        assert (
            e.spec.architecture is not None and e.spec.runtime is not None and e.spec.capabilities is not None
        )
        family = architectures.lookup(e.spec.architecture).family
        assert e.spec.runtime.tool_call_parser == TOOL_PARSERS[family], e.name
        assert e.spec.capabilities.function_calling, e.name
    for e in ENTRIES:
        if e not in chat:
            assert e.spec.runtime is None or e.spec.runtime.tool_call_parser is None, e.name
