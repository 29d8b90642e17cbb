"""Parameter counts, bytes and KV cache from real published config.json files.

The fixtures are the published ``config.json`` files of those repositories (Hugging Face hub),
transcribed; a few fields that no estimate reads (Whisper's token suppression lists) are left
out. Run ``.venv/bin/python tests/registry/test_parameter_estimates.py`` to print the table of
published against estimated counts.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from modelyard.registry import errors, estimates

CONFIGS = pathlib.Path(__file__).parent / "fixtures" / "configs"

# fixture -> (published parameter count, where it is published)
PUBLISHED: dict[str, tuple[int, str]] = {
    "meta-llama__Llama-3.2-1B": (1_235_814_400, "HF safetensors metadata, 1.24B (model card)"),
    "meta-llama__Llama-3.1-8B": (8_030_261_248, "HF safetensors metadata, 8.03B"),
    "mistralai__Mistral-7B-v0.1": (7_241_732_096, "HF safetensors metadata, 7.24B"),
    "Qwen__Qwen2.5-7B": (7_615_616_512, "model card: 7.61B"),
    "Qwen__Qwen3-4B": (4_022_468_096, "model card: 4.0B; HF safetensors 4.02B"),
    "Qwen__Qwen2.5-VL-7B-Instruct": (8_290_000_000, "HF safetensors: 8.29B, vision tower included"),
    "Qwen__Qwen3-VL-8B-Instruct": (8_770_000_000, "HF safetensors: 8.77B, vision tower included"),
    "google__gemma-2-2b": (2_614_341_888, "HF safetensors metadata, 2.61B"),
    "google__embeddinggemma-300m": (
        308_000_000,
        "model card: 308M (includes 4.7M of sentence-transformers Dense layers)",
    ),
    "microsoft__Phi-3-mini-4k-instruct": (3_821_079_552, "model card: 3.8B; HF 3.82B"),
    "google-bert__bert-base-uncased": (110_000_000, "BERT paper: BERT-base 110M"),
    "BAAI__bge-m3": (568_000_000, "HF safetensors 568M (XLM-RoBERTa large)"),
    "BAAI__bge-reranker-v2-m3": (568_000_000, "HF safetensors 568M"),
    "openai__whisper-small": (244_000_000, "Whisper paper, table 1: small 244M"),
}


def load(name: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text())
    return config


def table() -> str:
    rows = [f"{'model':38} {'published':>15} {'estimated':>15} {'diff':>7}  source"]
    for name, (published, source) in PUBLISHED.items():
        counted = estimates.parameter_count(load(name))
        diff = (counted - published) / published
        rows.append(f"{name:38} {published:>15,} {counted:>15,} {diff:>+7.2%}  {source}")
    return "\n".join(rows)


def test_every_fixture_has_a_published_count() -> None:
    assert sorted(PUBLISHED) == sorted(p.stem for p in CONFIGS.glob("*.json"))
    assert len(PUBLISHED) >= 7


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_within_3_percent_of_published(name: str) -> None:
    published, _source = PUBLISHED[name]
    counted = estimates.parameter_count(load(name))
    assert abs(counted - published) / published < 0.03, table()


def test_decoder_counts_are_exact_where_the_checkpoint_count_is_known() -> None:
    assert estimates.parameter_count(load("meta-llama__Llama-3.1-8B")) == 8_030_261_248
    assert estimates.parameter_count(load("meta-llama__Llama-3.2-1B")) == 1_235_814_400


def test_tied_embeddings_are_counted_once() -> None:
    config = load("meta-llama__Llama-3.2-1B")
    untied = {**config, "tie_word_embeddings": False}
    assert estimates.parameter_count(untied) - estimates.parameter_count(config) == 128256 * 2048


def test_vision_tower_is_part_of_a_vlm() -> None:
    vlm = estimates.parameter_count(load("Qwen__Qwen2.5-VL-7B-Instruct"))
    text_only = estimates.parameter_count(load("Qwen__Qwen2.5-7B"))
    assert 0.6e9 < vlm - text_only < 0.75e9  # the 675M Qwen2.5-VL ViT


def test_text_config_of_a_resaved_vlm_is_read() -> None:
    flat = load("Qwen__Qwen2.5-VL-7B-Instruct")
    text_keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "vocab_size", "tie_word_embeddings")  # fmt: skip
    nested = {k: v for k, v in flat.items() if k not in text_keys}
    nested["text_config"] = {k: flat[k] for k in text_keys} | {"model_type": "qwen2_5_vl_text"}
    assert estimates.parameter_count(nested) == estimates.parameter_count(flat)


def test_nested_text_config_and_its_dtype_are_read() -> None:
    config = load("Qwen__Qwen3-VL-8B-Instruct")
    assert estimates.bytes_per_param(config) == 2
    assert estimates.kv_cache_bytes_per_token(config) == 2 * 36 * 8 * 128 * 2
    assert estimates.default_max_model_len(config) == 8192
    tied = {**config, "tie_word_embeddings": True}  # top level, as Qwen3-VL-2B/4B write it
    assert estimates.parameter_count(config) - estimates.parameter_count(tied) == 151936 * 4096


def test_moe_counts_every_expert() -> None:
    config = {
        "architectures": ["MixtralForCausalLM"],
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_local_experts": 8,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
    }  # fmt: skip  (Mixtral-8x7B: 46.7B published)
    assert abs(estimates.parameter_count(config) - 46.7e9) / 46.7e9 < 0.01


def test_missing_field_names_it() -> None:
    config = load("meta-llama__Llama-3.1-8B")
    del config["intermediate_size"]
    with pytest.raises(errors.ConfigError, match="'intermediate_size'"):
        estimates.parameter_count(config)
    whisper = load("openai__whisper-small")
    del whisper["d_model"]
    with pytest.raises(errors.ConfigError, match="'d_model'"):
        estimates.parameter_count(whisper)


def test_bytes_per_param_from_dtype_and_quantization() -> None:
    llama = load("meta-llama__Llama-3.1-8B")
    assert estimates.bytes_per_param(llama) == 2
    assert estimates.bytes_per_param(llama, "float32") == 4
    assert estimates.bytes_per_param(llama, "fp8") == 1
    assert estimates.bytes_per_param(load("google-bert__bert-base-uncased")) == 4  # no dtype
    awq = {**llama, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}
    assert 0.5 < estimates.bytes_per_param(awq) < 0.55
    assert estimates.bytes_per_param(awq, "float16") == estimates.bytes_per_param(awq)
    nf4 = {**llama, "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}}
    assert 0.5 < estimates.bytes_per_param(nf4) < 0.6
    fp8 = {**llama, "quantization_config": {"quant_method": "fp8"}}
    assert estimates.bytes_per_param(fp8) == 1
    with pytest.raises(errors.ConfigError, match="bits"):
        estimates.bytes_per_param({**llama, "quantization_config": {"quant_method": "odd"}})
    with pytest.raises(errors.ConfigError, match="dtype"):
        estimates.bytes_per_param(llama, "float7")


def test_weight_bytes_keep_embeddings_16_bit_under_quantization() -> None:
    llama = load("meta-llama__Llama-3.1-8B")
    assert estimates.weight_bytes(llama) == 2 * 8_030_261_248
    awq = {**llama, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}
    embeddings = 2 * 128256 * 4096
    body = 8_030_261_248 - embeddings
    assert estimates.weight_bytes(awq) == pytest.approx(embeddings * 2 + body * (0.5 + 4 / 128), 1)


def test_kv_cache_bytes_per_token() -> None:
    assert estimates.kv_cache_bytes_per_token(load("meta-llama__Llama-3.1-8B")) == 131072
    assert estimates.kv_cache_bytes_per_token(load("meta-llama__Llama-3.1-8B"), 1) == 65536
    qwen3 = load("Qwen__Qwen3-4B")  # head_dim 128 given, not hidden/heads = 80
    assert estimates.kv_cache_bytes_per_token(qwen3) == 2 * 36 * 8 * 128 * 2
    gemma = load("google__gemma-2-2b")  # float32 checkpoint
    assert estimates.kv_cache_bytes_per_token(gemma) == 2 * 26 * 4 * 256 * 4
    whisper = load("openai__whisper-small")
    assert estimates.kv_cache_bytes_per_token(whisper) == 2 * 12 * 768 * 4


@pytest.mark.parametrize(
    "name", ["google-bert__bert-base-uncased", "BAAI__bge-m3", "google__embeddinggemma-300m"]
)
def test_encoders_keep_no_kv_cache(name: str) -> None:
    assert estimates.kv_cache_bytes_per_token(load(name)) == 0


@pytest.mark.parametrize(
    ("n", "text"),
    [(1_235_814_400, "1.24B"), (8_030_261_248, "8.03B"), (109_514_298, "110M"),
     (241_734_912, "242M"), (999_600_000, "1B"), (46_700_000_000, "46.7B"), (512, "512"),
     (1_500, "1.5K")],
)  # fmt: skip
def test_human_count(n: int, text: str) -> None:
    assert estimates.human_count(n) == text


def test_estimate_of_llama_8b() -> None:
    result = estimates.estimate(load("meta-llama__Llama-3.1-8B"))
    assert (result.architecture, result.family, result.category) == (
        "LlamaForCausalLM",
        "llama",
        "text-llm",
    )
    assert result.parameters_human == "8.03B"
    assert result.dtype == "bfloat16"
    assert result.max_model_len == 8192  # 131072 capped
    # weights 14.96 GiB; min: + 1024 tokens of KV (0.125) + overhead (1.125) -> 16.2
    assert result.min_vram_gb == 17
    # recommended: (14.96 + 1.0 KV + 2.0 overhead) * 1.2 = 21.6
    assert result.recommended_vram_gb == 22
    assert result.min_ram_gb == 18  # 14.96 * 1.2
    assert result.min_gpus == 1
    assert result.fit is None


def test_estimate_uses_the_models_own_shorter_context() -> None:
    assert estimates.estimate(load("microsoft__Phi-3-mini-4k-instruct")).max_model_len == 4096
    assert estimates.estimate(load("openai__whisper-small")).max_model_len == 448


def test_estimate_names_the_quantization() -> None:
    config = load("Qwen__Qwen2.5-7B")
    config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 128}
    result = estimates.estimate(config)
    assert result.dtype == "awq-4.2bit"
    assert result.weight_bytes < estimates.weight_bytes(load("Qwen__Qwen2.5-7B")) / 2.5


def test_estimate_to_dict_is_json_ready() -> None:
    result = estimates.estimate(load("Qwen__Qwen3-4B"), gpu_memory_gib=24)
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["fit"]["fits"] is True
    assert set(data) >= {"parameters", "min_vram_gb", "recommended_vram_gb", "min_ram_gb"}


if __name__ == "__main__":
    print(table())
