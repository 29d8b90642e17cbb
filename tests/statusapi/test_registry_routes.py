"""The Model Garden registry routes over a view of the built-in catalog: the list (summaries,
filters, pagination), a model's detail (ids with a slash), categories, and the error shape."""

from __future__ import annotations

from statusapi.conftest import Api

SUMMARY_KEYS = {
    "id", "name", "category", "parameters", "description", "tags", "status", "is_vision",
    "is_quantized", "min_vram_gb", "recommended_vram_gb", "served_name", "phase", "entry", "engine",
}  # fmt: skip


def test_list_is_the_model_garden_envelope_with_summaries(api: Api) -> None:
    status, body = api.get("/api/v1/registry/models")
    assert status == 200
    assert body["success"] is True
    assert body["total"] == len(body["data"]) == 23
    tiny = next(m for m in body["data"] if m["id"] == "unsloth/tinyllama-bnb-4bit")
    assert set(tiny) == SUMMARY_KEYS
    assert tiny["name"] == "TinyLlama 1.1B (4-bit)"
    assert tiny["category"] == "text-llm"
    assert tiny["status"] == "stable"
    assert tiny["is_quantized"] is True and tiny["is_vision"] is False
    assert tiny["min_vram_gb"] == 3 and tiny["recommended_vram_gb"] == 4
    assert tiny["phase"] == "Valid"


def test_filters_narrow_the_list(api: Api) -> None:
    _, vision = api.get("/api/v1/registry/models", category="vision-vlm")
    assert vision["total"] == 4 and all(m["is_vision"] for m in vision["data"])
    _, quantized = api.get("/api/v1/registry/models", tag="quantized")
    assert {m["id"] for m in quantized["data"]} >= {"unsloth/tinyllama-bnb-4bit"}
    assert all("quantized" in m["tags"] for m in quantized["data"])
    _, trainable = api.get("/api/v1/registry/models", capability="training", category="speech")
    assert trainable["total"] == 0
    _, camel = api.get("/api/v1/registry/models", capability="structuredOutputs")
    _, snake = api.get("/api/v1/registry/models", capability="structured_outputs")
    assert camel["total"] == snake["total"]
    _, search = api.get("/api/v1/registry/models", q="WHISPER")
    assert search["total"] == 10
    _, experimental = api.get("/api/v1/registry/models", lifecycle="experimental")
    _, by_status = api.get("/api/v1/registry/models", status="experimental")
    assert experimental["total"] == by_status["total"] > 0
    assert all(m["status"] == "experimental" for m in experimental["data"])


def test_pagination_keeps_the_total(api: Api) -> None:
    _, first = api.get("/api/v1/registry/models", limit=5)
    _, second = api.get("/api/v1/registry/models", limit=5, offset=5)
    assert first["total"] == second["total"] == 23
    assert len(first["data"]) == len(second["data"]) == 5
    assert not {m["id"] for m in first["data"]} & {m["id"] for m in second["data"]}


def test_detail_of_an_id_with_a_slash(api: Api) -> None:
    status, body = api.get("/api/v1/registry/models/Qwen/Qwen3-4B-Instruct-2507")
    assert status == 200 and body["success"]
    model = body["data"]
    assert model["id"] == "Qwen/Qwen3-4B-Instruct-2507" and model["entry"] == "qwen3-4b-instruct-2507"
    assert model["requirements"]["min_vram_gb"] == model["min_vram_gb"]
    assert model["capabilities"]["training"] is True
    assert model["inference_defaults"]["max_model_len"] > 0
    assert "learning_rate" in model["training_defaults"]["hyperparameters"]
    assert "r" in model["training_defaults"]["lora_config"]
    serving = {(e["namespace"], e["name"]) for e in model["endpoints"]}
    assert serving == {("prod", "qwen-a"), ("prod", "qwen-b"), ("prod", "qwen-c")}


def test_detail_by_entry_name_or_served_name(api: Api) -> None:
    _, by_name = api.get("/api/v1/registry/models/whisper-tiny-en")
    _, by_served = api.get("/api/v1/registry/models/openai/whisper-tiny.en")
    assert by_name["data"] == by_served["data"]


def test_unknown_id_is_404_in_the_envelope(api: Api) -> None:
    status, body = api.get("/api/v1/registry/models/nobody/no-such-model")
    assert status == 404
    assert body == {
        "success": False,
        "error": {"code": "not_found", "message": "model 'nobody/no-such-model' is not in the registry"},
    }
    status, body = api.get("/api/v1/registry/models/nobody/no-such-model/deployments")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_deployments_of_a_model(api: Api) -> None:
    status, body = api.get("/api/v1/registry/models/Qwen/Qwen3-4B-Instruct-2507/deployments")
    assert status == 200 and body["total"] == 3
    assert {e["name"]: e["share"] for e in body["data"]} == {"qwen-a": 0.75, "qwen-b": 0.25, "qwen-c": 0.0}


def test_categories_with_counts(api: Api) -> None:
    status, body = api.get("/api/v1/registry/categories")
    assert status == 200
    assert body["data"]["text-llm"]["name"] == "Text-Only Language Models"
    assert body["data"]["vision-vlm"]["icon"]
    assert {k: v["count"] for k, v in body["data"].items()} == {
        "text-llm": 5, "vision-vlm": 4, "embedding": 4, "speech": 10, "rerank": 0,
    }  # fmt: skip


def test_bad_query_parameters_are_400_naming_the_field(api: Api) -> None:
    status, body = api.get("/api/v1/registry/models", category="music")
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert body["error"]["message"].startswith("category:")
    status, body = api.get("/api/v1/registry/models", limit="many")
    assert status == 400 and body["error"]["details"][0]["field"] == "limit"
    status, body = api.get("/api/v1/registry/models", capability="flying")
    assert status == 400 and "capability" in body["error"]["message"]
    status, body = api.get("/api/v1/registry/models", categroy="speech")
    assert status == 400 and body["error"]["details"] == [
        {"field": "categroy", "message": "unknown query field"}
    ]
