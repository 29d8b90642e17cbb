"""Which model architectures modelyard serves, and what each one can do.

A ModelEntry names a Hugging Face repository; its ``config.json`` says which transformers class
builds the model (``architectures[0]``, or ``model_type`` in old configs). Everything the operator
decides before a pod exists hangs off that name: the category shown to users, the runtime
handler (chat, embedding, rerank, speech), and whether training, vision or streaming make sense.
This module is the one table of those facts (FastLLM's ``ModelArchitecture`` families, see
``seeds/000``), so that an unknown architecture fails at ``kubectl apply`` with the list of what
is supported instead of as a crash-looping pod.

Rules, applied per architecture in the table below:

- ``*ForCausalLM``                          text-llm,  task chat
- ``*VL*ForConditionalGeneration``          vision-vlm, task chat, vision
- encoders and pooled decoders (``BertModel``, ``*ForMaskedLM``, ``Gemma3TextModel``,
  ``Qwen3Model``)                           embedding, no training, no streaming
- ``*ForSequenceClassification`` (encoders) rerank
- ``WhisperForConditionalGeneration``       speech
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from modelyard.registry import errors

Category = Literal["text-llm", "vision-vlm", "embedding", "speech", "rerank"]

__all__ = [
    "ArchitectureInfo",
    "Capabilities",
    "Category",
    "detect",
    "lookup",
    "supported",
]


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a model of this architecture can be used for."""

    training: bool
    inference: bool
    vision: bool
    structured_outputs: bool
    streaming: bool
    function_calling: bool

    def to_dict(self) -> dict[str, bool]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ArchitectureInfo:
    """One supported architecture: its family, category, capabilities and runtime task."""

    architecture: str
    family: str
    category: Category
    capabilities: Capabilities
    task: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Capabilities and runtime task follow from the category alone. Function calling depends on the
# chat template of an instruct checkpoint, not on the architecture, so it is never claimed here.
_BY_CATEGORY: dict[Category, tuple[Capabilities, str]] = {
    "text-llm": (Capabilities(True, True, False, True, True, False), "chat"),
    "vision-vlm": (Capabilities(True, True, True, True, True, False), "chat"),
    "embedding": (Capabilities(False, True, False, False, False, False), "embedding"),
    "rerank": (Capabilities(False, True, False, False, False, False), "rerank"),
    "speech": (Capabilities(False, True, False, False, False, False), "speech"),
}

# family -> ((architecture, category), ...). Families are lowercase and stable: they appear in
# ModelEntry status and in the error message below.
_FAMILIES: dict[str, tuple[tuple[str, Category], ...]] = {
    "bert": (
        ("BertModel", "embedding"),
        ("BertForMaskedLM", "embedding"),
        ("BertForSequenceClassification", "rerank"),
        ("RobertaModel", "embedding"),
        ("RobertaForMaskedLM", "embedding"),
        ("RobertaForSequenceClassification", "rerank"),
        ("XLMRobertaModel", "embedding"),
        ("XLMRobertaForMaskedLM", "embedding"),
        ("XLMRobertaForSequenceClassification", "rerank"),
        ("DebertaModel", "embedding"),
        ("DebertaV2Model", "embedding"),
        ("DebertaV2ForSequenceClassification", "rerank"),
    ),
    "gemma": (
        ("GemmaForCausalLM", "text-llm"),
        ("Gemma2ForCausalLM", "text-llm"),
        ("Gemma3ForCausalLM", "text-llm"),
        ("Gemma3TextModel", "embedding"),  # google/embeddinggemma-300m
    ),
    "llama": (("LlamaForCausalLM", "text-llm"),),
    "mistral": (
        ("MistralForCausalLM", "text-llm"),
        ("MixtralForCausalLM", "text-llm"),
        ("MistralModel", "embedding"),  # intfloat/e5-mistral-7b-instruct
    ),
    "phi": (
        ("PhiForCausalLM", "text-llm"),
        ("Phi3ForCausalLM", "text-llm"),
    ),
    "qwen": (
        ("Qwen2ForCausalLM", "text-llm"),
        ("Qwen3ForCausalLM", "text-llm"),
        ("Qwen3MoeForCausalLM", "text-llm"),
        ("Qwen2Model", "embedding"),  # Alibaba-NLP/gte-Qwen2-*
        ("Qwen3Model", "embedding"),  # Qwen/Qwen3-Embedding-*
    ),
    "qwen-vl": (
        ("Qwen2VLForConditionalGeneration", "vision-vlm"),
        ("Qwen2_5_VLForConditionalGeneration", "vision-vlm"),
        ("Qwen3VLForConditionalGeneration", "vision-vlm"),
        ("Qwen3VLMoeForConditionalGeneration", "vision-vlm"),
    ),
    "whisper": (("WhisperForConditionalGeneration", "speech"),),
}

# Old or hand-written configs name only a model_type; it stands for the family's main class.
_BY_MODEL_TYPE: dict[str, str] = {
    "bert": "BertModel",
    "roberta": "RobertaModel",
    "xlm-roberta": "XLMRobertaModel",
    "deberta": "DebertaModel",
    "deberta-v2": "DebertaV2Model",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "phi": "PhiForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration",
    "whisper": "WhisperForConditionalGeneration",
}


def _build_table() -> dict[str, ArchitectureInfo]:
    table: dict[str, ArchitectureInfo] = {}
    for family, members in _FAMILIES.items():
        for architecture, category in members:
            capabilities, task = _BY_CATEGORY[category]
            table[architecture] = ArchitectureInfo(
                architecture=architecture,
                family=family,
                category=category,
                capabilities=capabilities,
                task=task,
            )
    return table


_TABLE = _build_table()


def supported() -> dict[str, tuple[str, ...]]:
    """Family -> the architectures of that family, families in alphabetical order."""
    return {family: tuple(a for a, _ in members) for family, members in sorted(_FAMILIES.items())}


def _unsupported(what: str) -> errors.UnknownArchitectureError:
    listing = ", ".join(f"{family} ({', '.join(archs)})" for family, archs in supported().items())
    return errors.UnknownArchitectureError(f"unsupported {what}; supported: {listing}")


def lookup(architecture: str) -> ArchitectureInfo:
    """The facts about one architecture class name, e.g. ``"Qwen3ForCausalLM"``.

    Raises UnknownArchitectureError, whose message lists every supported family and class.
    """
    info = _TABLE.get(architecture)
    if info is None:
        raise _unsupported(f"architecture {architecture!r}")
    return info


def detect(config: Mapping[str, Any]) -> ArchitectureInfo:
    """The architecture of a Hugging Face ``config.json`` (as a dict).

    ``architectures[0]`` decides; ``model_type`` is used only when ``architectures`` is absent
    or empty. An unknown model_type is reported like an unknown architecture.
    """
    architectures = config.get("architectures")
    if architectures:
        if not isinstance(architectures, list) or not isinstance(architectures[0], str):
            raise errors.ConfigError(
                f"config.json: 'architectures' must be a list of class names, got {architectures!r}"
            )
        return lookup(architectures[0])
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise errors.ConfigError(
            "config.json: neither 'architectures' nor 'model_type' names the architecture"
        )
    architecture = _BY_MODEL_TYPE.get(model_type)
    if architecture is None:
        raise _unsupported(f"model_type {model_type!r}")
    return lookup(architecture)
