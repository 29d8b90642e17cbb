"""The runtime command line follows the entry and the engine, deterministically."""

from __future__ import annotations

from factories import endpoint, entry

from modelyard.builders import runtime_args


def _args(e, ep, engine: str) -> list[str]:  # type: ignore[no-untyped-def]
    return runtime_args.runtime_args(e, ep, served_name="llama", engine=engine, port=8000)


def test_vllm_gets_every_serving_option_and_runtime_lora() -> None:
    e = entry(
        inferenceDefaults={
            "maxModelLen": 4096,
            "dtype": "bfloat16",
            "gpuMemoryUtilization": 0.85,
            "tensorParallelSize": 2,
        },
        runtime={"engine": "vllm"},
    )
    ep = endpoint(
        engineArgs={"maxModelLen": 8192, "quantization": "fp8", "enable-prefix-caching": True},
        adapters=[{"name": "sql", "uri": "pvc://adapters/sql"}],
    )
    args = _args(e, ep, "vllm")
    assert args == [
        "--model", "meta-llama/Llama-3.2-1B-Instruct", "--served-name", "llama", "--engine", "vllm",
        "--provider", "huggingface", "--host", "$(POD_IP)", "--port", "8000",
        "--max-model-len", "8192", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.85",
        "--quantization", "fp8", "--tensor-parallel-size", "2",
        "--adapters-file", "/etc/modelyard/adapters/adapters.json", "--max-adapters", "8",
        "--engine-arg", "enable-prefix-caching=true",
    ]  # fmt: skip
    assert _args(e, ep, "vllm") == args


def test_vllm_with_prefix_hash_routing_turns_prefix_caching_on_unless_told_otherwise() -> None:
    e = entry(runtime={"engine": "vllm"})
    hashed = _args(e, endpoint(routing={"strategy": "PrefixHash"}), "vllm")
    assert hashed[-2:] == ["--engine-arg", "enable-prefix-caching=true"]
    assert "enable-prefix-caching=true" not in _args(e, endpoint(), "vllm")
    transformers = _args(e, endpoint(routing={"strategy": "PrefixHash"}), "transformers")
    assert "enable-prefix-caching=true" not in transformers
    off = endpoint(routing={"strategy": "PrefixHash"}, engineArgs={"enablePrefixCaching": False})
    assert _args(e, off, "vllm")[-2:] == ["--engine-arg", "enable-prefix-caching=false"]


def test_transformers_gets_handler_pooling_and_generation_defaults_but_no_vllm_options() -> None:
    e = entry(
        runtime={"engine": "transformers", "handler": "my.pkg.Handler", "pooling": "cls"},
        generationDefaults={"temperature": 0.2, "topP": 0.9, "maxTokens": 64},
        inferenceDefaults={"gpuMemoryUtilization": 0.9, "maxModelLen": 512},
    )
    args = _args(e, endpoint(), "transformers")
    assert args[args.index("--handler") + 1] == "my.pkg.Handler"
    assert args[args.index("--pooling") + 1] == "cls"
    assert args[args.index("--temperature") + 1] == "0.2"
    assert args[args.index("--top-p") + 1] == "0.9"
    assert args[args.index("--max-tokens") + 1] == "64"
    assert "--gpu-memory-utilization" not in args
    assert args[args.index("--max-model-len") + 1] == "512"


def test_pvc_and_file_sources_become_local_paths() -> None:
    pvc = entry(source={"provider": "local", "uri": "pvc://weights/llama"})
    args = _args(pvc, endpoint(), "transformers")
    assert args[1] == "/models/weights/llama" and args[args.index("--provider") + 1] == "local"
    local = entry(source={"provider": "local", "uri": "file:///srv/models/tiny"})
    assert _args(local, endpoint(), "transformers")[1] == "/srv/models/tiny"


def test_revision_is_passed() -> None:
    args = _args(entry(source={"repo": "a/b", "revision": "v2"}), endpoint(), "transformers")
    assert args[args.index("--revision") + 1] == "v2"


def test_a_fine_tuned_entry_runs_its_base_with_the_adapter_under_the_served_name() -> None:
    tuned = entry(
        "llama-tuned",
        source={"provider": "local", "uri": "file:///models/llama"},
        adapter={"baseModel": "llama", "uri": "file:///out/tuned"},
    )
    args = runtime_args.runtime_args(tuned, endpoint(), served_name="tuned", engine="transformers", port=8000)
    assert args[:6] == ["--model", "/models/llama", "--served-name", "llama", "--engine", "transformers"]
    assert args[args.index("--lora") : args.index("--lora") + 2] == ["--lora", "tuned=/out/tuned"]
    assert args.count("--lora") == 1


def test_the_entry_s_tool_call_parser_reaches_the_runtime_for_both_engines() -> None:
    e = entry(runtime={"engine": "vllm", "toolCallParser": "llama3_json"})
    for engine in ("vllm", "transformers"):
        args = _args(e, endpoint(), engine)
        assert args[args.index("--tool-call-parser") + 1] == "llama3_json"
    assert "--tool-call-parser" not in _args(entry(runtime={"engine": "vllm"}), endpoint(), "vllm")
