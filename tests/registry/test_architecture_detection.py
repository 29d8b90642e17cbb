"""Architecture detection: config.json -> family, category, capabilities, runtime task."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from modelyard.registry import architectures, errors

CONFIGS = pathlib.Path(__file__).parent / "fixtures" / "configs"


def load(name: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text())
    return config


@pytest.mark.parametrize(
    ("fixture", "architecture", "family", "category", "task"),
    [
        ("meta-llama__Llama-3.2-1B", "LlamaForCausalLM", "llama", "text-llm", "chat"),
        ("meta-llama__Llama-3.1-8B", "LlamaForCausalLM", "llama", "text-llm", "chat"),
        ("mistralai__Mistral-7B-v0.1", "MistralForCausalLM", "mistral", "text-llm", "chat"),
        ("Qwen__Qwen2.5-7B", "Qwen2ForCausalLM", "qwen", "text-llm", "chat"),
        ("Qwen__Qwen3-4B", "Qwen3ForCausalLM", "qwen", "text-llm", "chat"),
        (
            "Qwen__Qwen2.5-VL-7B-Instruct",
            "Qwen2_5_VLForConditionalGeneration",
            "qwen-vl",
            "vision-vlm",
            "chat",
        ),
        (
            "Qwen__Qwen3-VL-8B-Instruct",
            "Qwen3VLForConditionalGeneration",
            "qwen-vl",
            "vision-vlm",
            "chat",
        ),
        ("google__gemma-2-2b", "Gemma2ForCausalLM", "gemma", "text-llm", "chat"),
        ("google__embeddinggemma-300m", "Gemma3TextModel", "gemma", "embedding", "embedding"),
        ("microsoft__Phi-3-mini-4k-instruct", "Phi3ForCausalLM", "phi", "text-llm", "chat"),
        ("google-bert__bert-base-uncased", "BertForMaskedLM", "bert", "embedding", "embedding"),
        ("BAAI__bge-m3", "XLMRobertaModel", "bert", "embedding", "embedding"),
        (
            "BAAI__bge-reranker-v2-m3",
            "XLMRobertaForSequenceClassification",
            "bert",
            "rerank",
            "rerank",
        ),
        (
            "openai__whisper-small",
            "WhisperForConditionalGeneration",
            "whisper",
            "speech",
            "speech",
        ),
    ],
)
def test_detects_every_family_from_real_configs(
    fixture: str, architecture: str, family: str, category: str, task: str
) -> None:
    info = architectures.detect(load(fixture))
    assert (info.architecture, info.family, info.category, info.task) == (
        architecture,
        family,
        category,
        task,
    )


@pytest.mark.parametrize(
    ("architecture", "family", "category"),
    [
        ("MixtralForCausalLM", "mistral", "text-llm"),
        ("Qwen3MoeForCausalLM", "qwen", "text-llm"),
        ("Qwen3Model", "qwen", "embedding"),  # Qwen3-Embedding
        ("Qwen2VLForConditionalGeneration", "qwen-vl", "vision-vlm"),
        ("Qwen3VLForConditionalGeneration", "qwen-vl", "vision-vlm"),
        ("Qwen3VLMoeForConditionalGeneration", "qwen-vl", "vision-vlm"),
        ("GemmaForCausalLM", "gemma", "text-llm"),
        ("Gemma3ForCausalLM", "gemma", "text-llm"),
        ("PhiForCausalLM", "phi", "text-llm"),
        ("BertModel", "bert", "embedding"),
        ("BertForSequenceClassification", "bert", "rerank"),
        ("RobertaModel", "bert", "embedding"),
        ("RobertaForMaskedLM", "bert", "embedding"),
        ("RobertaForSequenceClassification", "bert", "rerank"),
        ("DebertaModel", "bert", "embedding"),
        ("DebertaV2Model", "bert", "embedding"),
    ],
)
def test_lookup_by_class_name(architecture: str, family: str, category: str) -> None:
    info = architectures.lookup(architecture)
    assert (info.architecture, info.family, info.category) == (architecture, family, category)


def test_category_rules_hold_for_every_supported_architecture() -> None:
    for names in architectures.supported().values():
        for name in names:
            info = architectures.lookup(name)
            caps = info.capabilities
            assert caps.inference
            if name.endswith("ForCausalLM"):
                assert info.category == "text-llm"
                assert caps.training and caps.streaming and caps.structured_outputs
                assert not caps.vision
            elif "VL" in name and name.endswith("ForConditionalGeneration"):
                assert info.category == "vision-vlm"
                assert caps.vision and caps.training and caps.streaming
            elif name.endswith("ForSequenceClassification"):
                assert info.category == "rerank" and info.task == "rerank"
                assert not caps.training and not caps.streaming
            elif name.startswith("Whisper"):
                assert info.category == "speech" and info.task == "speech"
            else:
                assert info.category == "embedding" and info.task == "embedding"
                assert not caps.training and not caps.streaming and not caps.vision
            assert not caps.function_calling


def test_model_type_is_the_fallback_when_architectures_is_missing() -> None:
    assert architectures.detect({"model_type": "llama"}).architecture == "LlamaForCausalLM"
    assert architectures.detect({"architectures": [], "model_type": "xlm-roberta"}).family == "bert"
    assert architectures.detect({"model_type": "whisper"}).category == "speech"


def test_architectures_wins_over_model_type() -> None:
    config = {"architectures": ["Qwen3Model"], "model_type": "qwen3"}
    assert architectures.detect(config).category == "embedding"


def test_unknown_architecture_lists_what_is_supported() -> None:
    with pytest.raises(errors.UnknownArchitectureError) as caught:
        architectures.detect({"architectures": ["FooForCausalLM"], "model_type": "llama"})
    message = str(caught.value)
    assert message.startswith("unsupported architecture 'FooForCausalLM'; supported: ")
    assert "bert (BertModel, " in message
    for family, names in architectures.supported().items():
        assert f"{family} (" in message
        for name in names:
            assert name in message


def test_unknown_model_type_is_an_unknown_architecture() -> None:
    with pytest.raises(errors.UnknownArchitectureError, match="model_type 'gpt2'; supported: bert"):
        architectures.detect({"model_type": "gpt2"})


def test_config_without_any_name_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError, match="architectures"):
        architectures.detect({"hidden_size": 8})


def test_errors_are_registry_errors() -> None:
    with pytest.raises(errors.RegistryError):
        architectures.lookup("Nope")


def test_supported_lists_the_required_families() -> None:
    families = architectures.supported()
    assert list(families) == sorted(families)
    assert {"llama", "mistral", "qwen", "qwen-vl", "bert", "gemma", "phi", "whisper"} <= set(families)
    assert "Qwen2_5_VLForConditionalGeneration" in families["qwen-vl"]
    assert "XLMRobertaForSequenceClassification" in families["bert"]


def test_to_dict_is_json_ready() -> None:
    info = architectures.lookup("Qwen3ForCausalLM")
    data = info.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["capabilities"]["structured_outputs"] is True
    assert data["family"] == "qwen"
