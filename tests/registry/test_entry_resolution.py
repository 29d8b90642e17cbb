"""A ModelEntry resolves to architecture, family, category, capabilities and requirements."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from modelyard import api
from modelyard.registry import resolve

CONFIGS = pathlib.Path(__file__).parent / "fixtures" / "configs"


def _entry(**spec: Any) -> api.ModelEntry:
    return api.ModelEntry.model_validate(
        {"metadata": {"name": "m"}, "spec": {"source": {"repo": "org/m"}, **spec}}
    )


def _config(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CONFIGS / name).read_text())
    return loaded


def test_inline_config_resolves_everything() -> None:
    resolved = resolve.resolve(_entry(config={"inline": _config("Qwen__Qwen3-4B.json")}))
    assert resolved.ok and resolved.reason is None
    assert (resolved.architecture, resolved.family, resolved.category) == (
        "Qwen3ForCausalLM",
        "qwen",
        "text-llm",
    )
    assert resolved.capabilities.training and resolved.capabilities.streaming
    assert resolved.estimate is not None and resolved.estimate.parameters == 4_022_468_096
    assert resolved.requirements.min_vram_gb is not None and resolved.requirements.min_vram_gb >= 8


def test_given_requirements_win_over_derived_ones() -> None:
    resolved = resolve.resolve(
        _entry(
            config={"inline": _config("Qwen__Qwen3-4B.json")}, requirements={"minVramGb": 40, "minGpus": 2}
        )
    )
    assert resolved.requirements.min_vram_gb == 40
    assert resolved.requirements.min_gpus == 2
    assert (
        resolved.requirements.recommended_vram_gb is not None
        and resolved.requirements.recommended_vram_gb >= 40
    )


def test_config_from_a_configmap_is_passed_in() -> None:
    resolved = resolve.resolve(_entry(), config=_config("openai__whisper-small.json"))
    assert (resolved.category, resolved.family) == ("speech", "whisper")


def test_architecture_without_config() -> None:
    resolved = resolve.resolve(_entry(architecture="XLMRobertaModel"))
    assert resolved.category == "embedding" and not resolved.capabilities.training


def test_unknown_architecture_is_invalid_with_the_supported_list() -> None:
    resolved = resolve.resolve(_entry(architecture="FooForCausalLM"))
    assert not resolved.ok and resolved.reason is not None
    assert "unsupported architecture 'FooForCausalLM'" in resolved.reason
    assert "llama (LlamaForCausalLM" in resolved.reason


def test_contradicting_architecture_is_invalid() -> None:
    resolved = resolve.resolve(
        _entry(architecture="LlamaForCausalLM", config={"inline": _config("Qwen__Qwen3-4B.json")})
    )
    assert not resolved.ok
    assert (
        resolved.reason
        == "spec.architecture LlamaForCausalLM contradicts config.json's architectures[0] Qwen3ForCausalLM"
    )


def test_nothing_to_go_on_is_invalid_with_what_to_give() -> None:
    resolved = resolve.resolve(_entry())
    assert not resolved.ok
    assert (
        resolved.reason
        == "cannot tell what this model is: give spec.architecture, spec.config or spec.category"
    )


def test_pooling_on_a_chat_model_is_invalid() -> None:
    resolved = resolve.resolve(_entry(category="text-llm", runtime={"pooling": "mean"}))
    assert (
        not resolved.ok
        and resolved.reason == "runtime.pooling is for embedding models, but the category is text-llm"
    )


def test_served_name_defaults_to_the_repo() -> None:
    assert resolve.resolve(_entry(category="embedding")).served_name == "org/m"
    assert resolve.resolve(_entry(category="embedding", servedName="emb")).served_name == "emb"
