"""models_registry.json is validated by the shipped JSON schema, imports and exports losslessly."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from modelyard.registry import errors, model_garden

CATALOGS = pathlib.Path(__file__).parent / "fixtures" / "catalogs"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def test_import_maps_every_section() -> None:
    entries = {e.spec.served_name: e for e in model_garden.load(CATALOGS / "models_registry.json")}
    tiny = entries["unsloth/tinyllama-bnb-4bit"]
    assert tiny.name == "unsloth-tinyllama-bnb-4bit"
    assert tiny.metadata.labels == {"modelyard.io/vendor": "unsloth", "modelyard.io/family": "llama"}
    assert tiny.spec.quantization is not None and tiny.spec.quantization.type == "bitsandbytes"
    assert tiny.spec.requirements is not None and tiny.spec.requirements.min_vram_gb == 4
    training = tiny.spec.training_defaults
    assert training is not None and training.lora is not None and training.hyperparameters is not None
    assert training.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert training.hyperparameters.optim == "adamw_8bit"
    assert entries["old/deprecated-llm"].spec.lifecycle == "deprecated"


def test_round_trip_gives_back_the_registry() -> None:
    original = json.loads((CATALOGS / "models_registry.json").read_text())
    exported = json.loads(model_garden.dump(model_garden.parse(original, "fixture")))
    expected = _without_nulls(original)
    # Capabilities come back complete: an absent one is false, and export says so.
    absent = dict.fromkeys(("vision", "structured_outputs", "streaming", "function_calling"), False)
    old = expected["models"]["old/deprecated-llm"]
    old["capabilities"] = {**absent, **old["capabilities"]}
    assert exported == expected


def test_schema_errors_name_the_model_and_field() -> None:
    data = json.loads((CATALOGS / "models_registry.json").read_text())
    tiny = data["models"]["unsloth/tinyllama-bnb-4bit"]
    tiny["requirements"]["min_vram_gb"] = -4
    tiny["category"] = "chatbot"
    with pytest.raises(errors.CatalogError) as caught:
        model_garden.parse(data, "models_registry.json")
    text = str(caught.value)
    assert (
        "models['unsloth/tinyllama-bnb-4bit'].requirements.min_vram_gb: -4 is less than the minimum of 0"
        in text
    )
    assert "models['unsloth/tinyllama-bnb-4bit'].category: 'chatbot' is not one of" in text


def test_key_must_equal_id() -> None:
    data = {"models": {"a/b": {"id": "a/c", "name": "X", "category": "text-llm"}}}
    with pytest.raises(errors.CatalogError, match="key differs from id"):
        model_garden.parse(data, "x.json")


def test_shipped_schema_is_a_valid_json_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(model_garden.schema())
