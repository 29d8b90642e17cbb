"""The pydantic models reject what the CRD's CEL rules reject, naming the field."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from modelyard import api


def _endpoint(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "e"},
        "spec": spec,
    }


def test_wire_format_is_camel_case_and_round_trips() -> None:
    wire = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEntry",
        "metadata": {"name": "llama"},
        "spec": {
            "source": {"provider": "huggingface", "repo": "meta-llama/Llama-3.2-1B-Instruct"},
            "servedName": "llama-1b",
            "inferenceDefaults": {"maxModelLen": 4096, "gpuMemoryUtilization": 0.9},
            "trainingDefaults": {"lora": {"r": 16, "loraAlpha": 16, "targetModules": ["q_proj"]}},
            "lifecycle": "stable",
        },
    }
    entry = api.ModelEntry.model_validate(wire)
    assert entry.spec.inference_defaults is not None
    assert entry.spec.inference_defaults.max_model_len == 4096
    assert entry.to_wire() == wire


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"model": "m", "weight": 5000}, "weight", "less than or equal to 1000"),
        ({"model": "m", "replicas": -1}, "replicas", "greater than or equal to 0"),
        ({"model": ""}, "model", "at least 1 character"),
        ({"model": "m", "servedName": "a", "fallback": ["a"]}, "spec", "fallback must not name"),
        ({"model": "m", "colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"model": "m", "adapters": [{"name": "a"}]}, "adapters", "exactly one of entry or uri"),
        (
            {"model": "m", "adapters": [{"name": "a", "entry": "e", "uri": "file:///a"}]},
            "adapters",
            "exactly one of entry or uri",
        ),
        (
            {"model": "m", "adapters": [{"name": "a", "uri": "file:///a"}, {"name": "a", "entry": "e"}]},
            "spec",
            "adapters must have unique names",
        ),
        (
            {"model": "m", "servedName": "a", "adapters": [{"name": "a", "uri": "file:///a"}]},
            "spec",
            "must not be the endpoint's own servedName",
        ),
        ({"model": "m", "maxAdapters": 0}, "maxAdapters", "greater than or equal to 1"),
    ],
)
def test_bad_endpoint_names_the_field(spec: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        api.ModelEndpoint.model_validate(_endpoint(**spec))
    text = str(caught.value)
    assert field in text
    assert words in text


def test_dataset_needs_exactly_one_source() -> None:
    base = {"model": "m", "output": {"uri": "pvc://out/x"}}
    for dataset in ({}, {"uri": "pvc://d/train.jsonl", "configMap": {"name": "c", "key": "k"}}):
        with pytest.raises(pydantic.ValidationError, match="exactly one of uri or configMap"):
            api.training_job.TrainingJobSpec.model_validate({**base, "dataset": dataset})
    ok = api.training_job.TrainingJobSpec.model_validate({**base, "dataset": {"uri": "pvc://d/train.jsonl"}})
    assert ok.method == "lora"


def test_upstream_engine_needs_upstream_block() -> None:
    spec = {"source": {"provider": "upstream"}, "runtime": {"engine": "upstream"}}
    with pytest.raises(pydantic.ValidationError, match=r"needs spec\.upstream"):
        api.model_entry.ModelEntrySpec.model_validate(spec)
    spec["upstream"] = {
        "baseUrl": "https://api.example.test/v1",
        "apiKeySecretRef": {"name": "s", "key": "k"},
    }
    assert api.model_entry.ModelEntrySpec.model_validate(spec).engine == "upstream"


def test_output_register_keeps_its_wire_name() -> None:
    out = api.training_job.Output.model_validate({"uri": "pvc://o/x", "register": {"name": "tuned"}})
    assert out.register_as is not None and out.register_as.name == "tuned"
    assert out.to_wire() == {"uri": "pvc://o/x", "register": {"name": "tuned"}}


def test_serve_on_needs_an_adapter_the_pods_can_read() -> None:
    base = {"model": "m", "dataset": {"uri": "pvc://d/train.jsonl"}}
    serve = {"serveOn": {"endpoint": "chat"}}
    with pytest.raises(pydantic.ValidationError, match="serveOn needs a pvc:// or file://"):
        api.training_job.TrainingJobSpec.model_validate({**base, "output": {"uri": "s3://b/x", **serve}})
    with pytest.raises(pydantic.ValidationError, match="serveOn needs method lora or qlora"):
        api.training_job.TrainingJobSpec.model_validate(
            {**base, "method": "full", "output": {"uri": "pvc://o/x", **serve}}
        )
    ok = api.training_job.TrainingJobSpec.model_validate({**base, "output": {"uri": "pvc://o/x", **serve}})
    assert ok.output.to_wire() == {"uri": "pvc://o/x", "serveOn": {"endpoint": "chat"}}
