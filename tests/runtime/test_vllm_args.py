"""``build_vllm_args``: the runtime's options as vLLM flags, in a fixed order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelyard.runtime import errors, options, vllm


def test_every_option_becomes_its_vllm_flag_in_a_fixed_order() -> None:
    o = vllm.VllmOptions(
        model="/models/llama",
        served_name="llama-3",
        host="10.0.0.5",
        port=8001,
        revision="main",
        download_dir="/cache",
        max_model_len=8192,
        dtype="bfloat16",
        gpu_memory_utilization=0.9,
        quantization="awq",
        tensor_parallel_size=2,
        lora=(("sql", "file:///adapters/sql"), ("chat", "/adapters/chat")),
        generation=options.GenerationDefaults(temperature=0.7, top_p=0.9, max_tokens=512),
        engine_args=(("enforce_eager", None), ("max-num-seqs", "64"), ("--block-size", "16")),
    )
    assert vllm.build_vllm_args(o) == [
        "--model", "/models/llama",
        "--served-model-name", "llama-3",
        "--host", "10.0.0.5",
        "--port", "8001",
        "--revision", "main",
        "--download-dir", "/cache",
        "--max-model-len", "8192",
        "--dtype", "bfloat16",
        "--gpu-memory-utilization", "0.9",
        "--quantization", "awq",
        "--tensor-parallel-size", "2",
        "--enable-lora", "--lora-modules", "sql=/adapters/sql", "chat=/adapters/chat",
        "--max-loras", "2",
        "--override-generation-config", '{"temperature":0.7,"top_p":0.9,"max_new_tokens":512}',
        "--block-size", "16",
        "--enforce-eager",
        "--max-num-seqs", "64",
    ]  # fmt: skip


def test_minimal_options_and_determinism() -> None:
    o = vllm.VllmOptions(model="org/m", engine_args=(("b", "2"), ("a", "1")))
    first = vllm.build_vllm_args(o)
    assert first == ["--model", "org/m", "--host", "0.0.0.0", "--port", "8000", "--a", "1", "--b", "2"]
    assert vllm.build_vllm_args(o) == first


def test_pooling_maps_to_the_pooler_config() -> None:
    args = vllm.build_vllm_args(vllm.VllmOptions(model="m", pooling="last"))
    assert json.loads(args[args.index("--pooler-config") + 1]) == {"pooling_type": "LAST"}
    with pytest.raises(errors.LoadError, match="max"):
        vllm.build_vllm_args(vllm.VllmOptions(model="m", pooling="max"))


def test_exec_replaces_the_process_with_the_vllm_server() -> None:
    seen: list[Any] = []
    vllm.exec_vllm(vllm.VllmOptions(model="m", port=9000), execvp=lambda f, a: seen.append((f, a)))
    program, argv = seen[0]
    assert argv[0] == program
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert argv[3:] == ["--model", "m", "--host", "0.0.0.0", "--port", "9000"]


def test_a_tool_call_parser_turns_on_auto_tool_choice() -> None:
    args = vllm.build_vllm_args(vllm.VllmOptions(model="m", tool_call_parser="hermes"))
    at = args.index("--enable-auto-tool-choice")
    assert args[at : at + 3] == ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    assert "--enable-auto-tool-choice" not in vllm.build_vllm_args(vllm.VllmOptions(model="m"))
