"""POST /validate/training and /validate/inference: the registry's verdict and why, 4xx naming the
field for bad input, 404 for an unknown model, and nothing changed by asking."""

from __future__ import annotations

import requests

from modelyard import statusapi
from statusapi.conftest import Api

TRAINING = "/api/v1/registry/validate/training"
INFERENCE = "/api/v1/registry/validate/inference"


def test_training_verdicts(api: Api) -> None:
    status, body = api.post(TRAINING, {"model_id": "unsloth/tinyllama-bnb-4bit"})
    assert status == 200 and body["success"]
    assert body["data"]["is_valid"] is True and body["data"]["error_message"] is None
    status, body = api.post(TRAINING, {"model_id": "openai/whisper-tiny"})
    assert body["data"]["is_valid"] is False and "cannot be trained" in body["data"]["error_message"]
    _, body = api.post(
        TRAINING, {"model_id": "Qwen/Qwen3-4B-Instruct-2507", "method": "full", "gpu_type": "NVIDIA-L4"}
    )
    assert body["data"]["is_valid"] is False
    assert "GiB" in body["data"]["error_message"] and "try method lora" in body["data"]["error_message"]
    _, body = api.post(
        TRAINING, {"model_id": "Qwen/Qwen3-4B-Instruct-2507", "method": "qlora", "gpu_type": "l4"}
    )
    assert body["data"]["is_valid"] is True and body["data"]["gpu_memory_gb"] == 22.0


def test_inference_fits_or_not_and_why(api: Api) -> None:
    _, fits = api.post(
        INFERENCE, {"model_id": "Qwen/Qwen3-4B-Instruct-2507", "gpu_type": "NVIDIA-L4", "gpu_count": 1}
    )
    data = fits["data"]
    assert data["fits"] is True and data["is_valid"] is True
    assert data["available_vram_gb"] == 22.0 and data["min_vram_gb"] is not None
    assert "GiB" in data["reason"]
    _, small = api.post(
        INFERENCE, {"model_id": "Qwen/Qwen3-4B-Instruct-2507", "gpu_type": "t4", "gpu_count": 1}
    )
    _, tiny = api.post(INFERENCE, {"model_id": "Qwen/Qwen3-4B-Instruct-2507", "gpu_memory_gb": 8})
    assert tiny["data"]["fits"] is False and "needs at least" in tiny["data"]["error_message"]
    assert small["data"]["gpu_type"] == "Tesla-T4"


def test_unknown_model_is_404(api: Api) -> None:
    for path, body in ((TRAINING, {"model_id": "x/y"}), (INFERENCE, {"model_id": "x/y", "gpu_type": "h100"})):
        status, answer = api.post(path, body)
        assert status == 404 and answer["error"]["code"] == "not_found"


def test_bad_fields_are_400_naming_them(api: Api) -> None:
    cases = [
        (TRAINING, {"model_id": "bge-m3", "method": "dpo"}, "method"),
        (TRAINING, {"model_id": "bge-m3", "gpu_type": "potato"}, "gpu_type"),
        (TRAINING, {"method": "lora"}, "model_id"),
        (INFERENCE, {"model_id": "bge-m3", "gpu_type": "h100", "gpu_count": 0}, "gpu_count"),
        (INFERENCE, {"model_id": "bge-m3", "gpu_type": "h100", "max_model_len": "long"}, "max_model_len"),
        (INFERENCE, {"model_id": "bge-m3", "gpu_type": "h100", "extra": 1}, "extra"),
    ]
    for path, body, field in cases:
        status, answer = api.post(path, body)
        assert status == 400, (body, answer)
        assert answer["success"] is False and answer["error"]["message"].startswith(f"{field}:"), answer
    status, answer = api.post(INFERENCE, {"model_id": "bge-m3"})
    assert status == 400 and "gpu_type" in answer["error"]["message"]


def test_malformed_and_oversized_bodies(view: statusapi.Cache, serve: object) -> None:
    small = serve(view, max_body_bytes=1024)  # type: ignore[operator]
    response = requests.post(small.base + TRAINING, data=b"{not json", timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    response = requests.post(small.base + TRAINING, json=["a list"], timeout=10)
    assert response.status_code == 400
    response = requests.post(small.base + TRAINING, json={"model_id": "x" * 5000}, timeout=10)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_validation_changes_nothing(api: Api, view: statusapi.Cache) -> None:
    before = (view.version, view.objects("ModelEntry"))
    api.post(TRAINING, {"model_id": "bge-m3"})
    api.post(INFERENCE, {"model_id": "bge-m3", "gpu_type": "t4"})
    assert (view.version, view.objects("ModelEntry")) == before
