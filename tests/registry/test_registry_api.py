"""The registry API: the Model Garden operations over ModelEntry objects."""

from __future__ import annotations

import json
import pathlib

import pytest

from modelyard import api
from modelyard.registry import catalog, errors

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture
def registry() -> catalog.Catalog:
    return catalog.Catalog.from_files(
        [FIXTURES / "catalogs" / "models_registry.json", FIXTURES / "catalogs" / "models.yaml"]
    )


def _entry_with_config(name: str, config_file: str, **spec: object) -> api.ModelEntry:
    config = json.loads((FIXTURES / "configs" / config_file).read_text())
    return api.ModelEntry.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"source": {"repo": f"org/{name}"}, "config": {"inline": config}, **spec},
        }
    )


def test_get_by_name_served_name_or_repo(registry: catalog.Catalog) -> None:
    by_repo = registry.get("unsloth/tinyllama-bnb-4bit")
    assert registry.get("unsloth-tinyllama-bnb-4bit") is by_repo
    assert registry.get("gpt-4o").spec.engine == "upstream"
    assert "my-chat" in registry and "nope" not in registry


def test_unknown_id_suggests_close_ones(registry: catalog.Catalog) -> None:
    with pytest.raises(errors.ModelNotFoundError, match="did you mean unsloth/tinyllama-bnb-4bit"):
        registry.get("unsloth/tinyllama-bnb-4")


def test_filters(registry: catalog.Catalog) -> None:
    served = lambda entries: sorted(e.spec.resolved_served_name for e in entries)  # noqa: E731
    assert served(registry.find(category="vision-vlm")) == ["Qwen/Qwen2.5-VL-7B-Instruct"]
    assert served(registry.find(category="embedding")) == ["BAAI/bge-m3"]
    assert served(registry.find(tag="quantized")) == ["unsloth/tinyllama-bnb-4bit"]
    assert "old/deprecated-llm" not in served(registry.find(lifecycle="stable"))
    assert served(registry.find(capability="vision")) == ["Qwen/Qwen2.5-VL-7B-Instruct"]
    assert served(registry.find(capability="structuredOutputs", category="text-llm")) == [
        "Qwen/Qwen3-4B-Instruct-2507",
        "unsloth/tinyllama-bnb-4bit",
    ]
    assert served(registry.find(q="TESTING")) == ["unsloth/tinyllama-bnb-4bit"]
    assert registry.categories()["text-llm"] == 4  # my-chat: a custom handler, category unknown
    with pytest.raises(errors.RegistryError, match="unknown capability 'flying'; one of training"):
        registry.find(capability="flying")


def test_training_defaults_merge_with_overrides(registry: catalog.Catalog) -> None:
    hp = registry.training_hyperparameters(
        "unsloth/tinyllama-bnb-4bit", {"learningRate": 1e-4, "num_epochs": 1}
    )
    assert (hp.learning_rate, hp.num_epochs, hp.batch_size, hp.optim) == (1e-4, 1, 2, "adamw_8bit")
    lora = registry.lora_config("unsloth/tinyllama-bnb-4bit", {"r": 4})
    assert (lora.r, lora.lora_alpha, lora.target_modules) == (4, 16, ["q_proj", "k_proj", "v_proj", "o_proj"])
    inference = registry.inference_config("unsloth/tinyllama-bnb-4bit", {"maxModelLen": 1024})
    assert (inference.max_model_len, inference.gpu_memory_utilization) == (1024, 0.85)
    assert registry.training_hyperparameters("BAAI/bge-m3").model_dump(exclude_none=True) == {}


def test_bad_override_names_the_field(registry: catalog.Catalog) -> None:
    with pytest.raises(ValueError, match="learningRate"):
        registry.training_hyperparameters("unsloth/tinyllama-bnb-4bit", {"learningRate": -1})


@pytest.mark.parametrize(
    ("model_id", "method", "gpu", "ok", "words"),
    [
        ("unsloth/tinyllama-bnb-4bit", "lora", None, True, None),
        ("unsloth/tinyllama-bnb-4bit", "qlora", 8, True, None),
        (
            "unsloth/tinyllama-bnb-4bit",
            "full",
            8,
            False,
            "full fine-tuning of unsloth/tinyllama-bnb-4bit (1.1B parameters) needs about 17.4 GiB",
        ),
        ("old/deprecated-llm", "lora", None, False, "is deprecated"),
        ("BAAI/bge-m3", "lora", None, False, "cannot be trained"),
        ("gpt-4o", "lora", None, False, "upstream proxy model"),
        ("missing/model", "lora", None, False, "not in the registry"),
    ],
)
def test_validate_for_training(
    registry: catalog.Catalog, model_id: str, method: str, gpu: float | None, ok: bool, words: str | None
) -> None:
    verdict = registry.validate_for_training(model_id, method, gpu)  # type: ignore[arg-type]
    assert verdict.ok is ok
    if words:
        assert verdict.reason is not None and words in verdict.reason


def test_validate_for_inference_from_requirements(registry: catalog.Catalog) -> None:
    ok, reason = registry.validate_for_inference("Qwen/Qwen2.5-VL-7B-Instruct", gpu_type="t4")
    assert not ok
    assert reason == (
        "Qwen/Qwen2.5-VL-7B-Instruct needs at least 18 GiB of GPU memory (requirements.minVramGb) "
        "but 1x t4 has 14 GiB"
    )
    assert registry.validate_for_inference("Qwen/Qwen2.5-VL-7B-Instruct", gpu_type="t4", gpu_count=2).ok
    assert registry.validate_for_inference("Qwen/Qwen2.5-VL-7B-Instruct", gpu_type="h100").ok
    deprecated = registry.validate_for_inference("old/deprecated-llm", gpu_memory_gib=24)
    assert deprecated == (True, "old/deprecated-llm is deprecated")


def test_validate_for_inference_from_config_uses_the_fit_estimate() -> None:
    registry = catalog.Catalog([_entry_with_config("llama8b", "meta-llama__Llama-3.1-8B.json")])
    small = registry.validate_for_inference("llama8b", gpu_memory_gib=16, max_model_len=4096)
    assert not small.ok and small.reason is not None
    assert "does not fit" in small.reason and "4096 tokens" in small.reason
    two = registry.validate_for_inference("llama8b", gpu_memory_gib=12, gpu_count=2, max_model_len=4096)
    assert two.ok and two.reason is not None and "tensor_parallel_size=2" in two.reason


def test_unknown_gpu_type_lists_the_known_ones(registry: catalog.Catalog) -> None:
    ok, reason = registry.validate_for_inference("BAAI/bge-m3", gpu_type="voodoo-5")
    assert not ok and reason is not None
    assert "unknown gpuType 'voodoo-5'" in reason and "NVIDIA-L4" in reason


def test_builtin_catalog_loads() -> None:
    builtin = catalog.Catalog.builtin()
    assert len(builtin) >= 20
    assert builtin.get("meta-llama/Llama-3.2-1B-Instruct").spec.category == "text-llm"
