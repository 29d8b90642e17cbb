"""Whether a model fits GPUs: weights/TP + KV cache/TP + overhead against usable memory.

Llama-3.1-8B in bf16: weights 14.96 GiB, KV 128 KiB per token (0.5 GiB at 4096 tokens),
overhead 1 GiB + 4096 * 4096 * 32 B = 1.5 GiB -> 16.96 GiB on one GPU, 9.23 per GPU at TP=2.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from modelyard.registry import estimates

CONFIGS = pathlib.Path(__file__).parent / "fixtures" / "configs"


def load(name: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text())
    return config


LLAMA_8B = "meta-llama__Llama-3.1-8B"


def test_llama_8b_does_not_fit_one_16_gib_gpu() -> None:
    result = estimates.fit(load(LLAMA_8B), gpu_memory_gib=16, max_model_len=4096)
    assert not result.fits
    assert result.tensor_parallel_size is None
    assert result.required_gib == pytest.approx(16.96, abs=0.01)
    assert result.available_gib == pytest.approx(14.4)
    assert result.reason == (
        "needs 17.0 GiB per GPU (weights 15.0, KV cache 0.5 for 4096 tokens, overhead 1.5) "
        "but 1x16 GiB at 0.90 utilization gives 14.4 GiB; does not fit"
    )


def test_llama_8b_fits_one_24_gib_gpu_at_4096_tokens() -> None:
    result = estimates.fit(load(LLAMA_8B), gpu_memory_gib=24, max_model_len=4096)
    assert result.fits
    assert result.tensor_parallel_size == 1
    assert (result.weights_gib, result.kv_cache_gib, result.overhead_gib) == (14.96, 0.5, 1.5)
    assert "and 1x24 GiB at 0.90 utilization gives 21.6 GiB" in result.reason
    assert result.reason.endswith("fits with tensor_parallel_size=1")


def test_llama_8b_needs_tensor_parallel_2_on_two_12_gib_gpus() -> None:
    result = estimates.fit(load(LLAMA_8B), gpu_memory_gib=12, gpus=2, max_model_len=4096)
    assert result.fits
    assert result.tensor_parallel_size == 2
    assert result.required_gib == pytest.approx(9.23, abs=0.01)
    assert result.weights_gib == pytest.approx(7.48, abs=0.01)
    assert result.reason == (
        "needs 9.2 GiB per GPU with tensor_parallel_size=2 (weights 7.5, KV cache 0.2 for "
        "4096 tokens, overhead 1.5) and 2x12 GiB at 0.90 utilization gives 10.8 GiB per GPU; "
        "fits with tensor_parallel_size=2"
    )


def test_the_smallest_tensor_parallel_size_that_fits_is_chosen() -> None:
    result = estimates.fit(load(LLAMA_8B), gpu_memory_gib=24, gpus=4, max_model_len=4096)
    assert result.tensor_parallel_size == 1


def test_tensor_parallel_sizes_divide_the_attention_heads() -> None:
    # Qwen2.5-7B has 28 heads: 3 GPUs cannot split them, so 3x8 GiB only tries TP 1 and 2.
    result = estimates.fit(load("Qwen__Qwen2.5-7B"), gpu_memory_gib=8, gpus=3, max_model_len=4096)
    assert not result.fits
    assert "does not fit even with tensor_parallel_size=2" in result.reason


def test_utilization_and_context_change_the_answer() -> None:
    config = load(LLAMA_8B)
    assert not estimates.fit(config, gpu_memory_gib=24, gpu_memory_utilization=0.7).fits
    long = estimates.fit(config, gpu_memory_gib=24, max_model_len=65536)
    assert not long.fits
    assert "KV cache 8.0 for 65536 tokens" in long.reason


def test_concurrent_sequences_multiply_the_kv_cache() -> None:
    result = estimates.fit(load(LLAMA_8B), gpu_memory_gib=80, max_model_len=8192, max_num_seqs=16)
    assert result.kv_cache_gib == 16.0
    assert "KV cache 16.0 for 16 x 8192 tokens" in result.reason
    assert result.fits


def test_dtype_override_shrinks_the_weights() -> None:
    config = load(LLAMA_8B)
    assert estimates.fit(config, gpu_memory_gib=16, max_model_len=4096, dtype="fp8").fits


def test_four_bit_checkpoint_fits_a_small_gpu() -> None:
    config = load("Qwen__Qwen2.5-7B")
    config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 128}
    assert not estimates.fit(load("Qwen__Qwen2.5-7B"), gpu_memory_gib=8, max_model_len=4096).fits
    assert estimates.fit(config, gpu_memory_gib=8, max_model_len=4096).fits


def test_embedding_model_needs_no_kv_cache() -> None:
    result = estimates.fit(load("BAAI__bge-m3"), gpu_memory_gib=8)
    assert result.fits
    assert result.kv_cache_gib == 0
    assert "KV cache 0.0 for 8192 tokens" in result.reason


def test_estimate_reports_fit_and_min_gpus() -> None:
    config = load(LLAMA_8B)
    result = estimates.estimate(config, gpu_memory_gib=12, gpus=1, max_model_len=4096)
    assert result.fit is not None and not result.fit.fits
    assert result.min_gpus == 2
    assert estimates.estimate(config, gpu_memory_gib=24, max_model_len=4096).min_gpus == 1
    assert estimates.estimate(config, gpu_memory_gib=0.5).min_gpus == 0  # never fits


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        estimates.fit(load(LLAMA_8B), gpu_memory_gib=24, gpus=0)
    with pytest.raises(ValueError):
        estimates.fit(load(LLAMA_8B), gpu_memory_gib=24, gpu_memory_utilization=1.5)


def test_kv_cache_follows_a_dtype_override() -> None:
    gemma = load("google__gemma-2-2b")  # float32 checkpoint
    as_stored = estimates.fit(gemma, gpu_memory_gib=24, max_model_len=8192)
    in_bf16 = estimates.fit(gemma, gpu_memory_gib=24, max_model_len=8192, dtype="bfloat16")
    assert in_bf16.weights_gib == pytest.approx(as_stored.weights_gib / 2, abs=0.01)
    assert in_bf16.kv_cache_gib == pytest.approx(as_stored.kv_cache_gib / 2, abs=0.01)
    in_fp8 = estimates.fit(gemma, gpu_memory_gib=24, max_model_len=8192, dtype="fp8")
    assert in_fp8.kv_cache_gib == in_bf16.kv_cache_gib  # fp8 weights, 16-bit cache
