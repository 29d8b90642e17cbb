"""The vLLM engine: the runtime's options as a vLLM OpenAI-server command line, then exec.

``build_vllm_args`` is pure and deterministic (fixed order; engine args sorted by key) so the
operator's builders and the tests can rely on its output. Live adapters
(:func:`vllm_lora_args`, :func:`environment`): ``--enable-lora --max-loras N --max-lora-rank R``
and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``, so adapters load over vLLM's
``/v1/load_lora_adapter`` while it serves. ``exec_vllm`` replaces this
process with ``python -m vllm.entrypoints.openai.api_server`` so vLLM owns the pod's PID 1
signals and its ``/health`` and ``/v1/*`` routes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable

from modelyard.api import lora as lora_api
from modelyard.runtime import errors, options

MODULE = "vllm.entrypoints.openai.api_server"
_POOLING = {"mean": "MEAN", "cls": "CLS", "last": "LAST"}


@dataclasses.dataclass(frozen=True)
class VllmOptions:
    model: str
    served_name: str | None = None
    host: str = "0.0.0.0"
    port: int = 8000
    revision: str | None = None
    download_dir: str | None = None
    max_model_len: int | None = None
    dtype: str | None = None
    gpu_memory_utilization: float | None = None
    quantization: str | None = None
    tensor_parallel_size: int | None = None
    lora: tuple[tuple[str, str], ...] = ()
    """(name, uri) pairs; file:// URIs become paths."""
    live_lora: bool = False
    """Adapters may be loaded while vLLM serves (LoRA on, the runtime-update env set)."""
    max_loras: int | None = None
    max_lora_rank: int | None = None
    pooling: options.Pooling | None = None
    tool_call_parser: str | None = None
    """vLLM's ``--tool-call-parser`` (with ``--enable-auto-tool-choice``): tools served."""
    generation: options.GenerationDefaults = dataclasses.field(default_factory=options.GenerationDefaults)
    engine_args: tuple[tuple[str, str | None], ...] = ()
    """(key, value) pairs passed as ``--key value``; value None passes ``--key`` alone."""


def _flag(key: str) -> str:
    return "--" + key.strip().lstrip("-").replace("_", "-")


def _lora_path(uri: str) -> str:
    return uri.removeprefix("file://")


def build_vllm_args(o: VllmOptions) -> list[str]:
    """vLLM OpenAI-server arguments for these options (without the program name)."""
    args = ["--model", o.model]
    if o.served_name:
        args += ["--served-model-name", o.served_name]
    args += ["--host", o.host, "--port", str(o.port)]
    if o.revision:
        args += ["--revision", o.revision]
    if o.download_dir:
        args += ["--download-dir", o.download_dir]
    if o.max_model_len is not None:
        args += ["--max-model-len", str(o.max_model_len)]
    if o.dtype:
        args += ["--dtype", o.dtype]
    if o.gpu_memory_utilization is not None:
        args += ["--gpu-memory-utilization", f"{o.gpu_memory_utilization:g}"]
    if o.quantization:
        args += ["--quantization", o.quantization]
    if o.tensor_parallel_size is not None:
        args += ["--tensor-parallel-size", str(o.tensor_parallel_size)]
    if o.lora or o.live_lora:
        args.append("--enable-lora")
        if o.lora:
            args += ["--lora-modules", *(f"{name}={_lora_path(uri)}" for name, uri in o.lora)]
        if o.live_lora or o.max_loras is not None:
            max_loras = o.max_loras or lora_api.DEFAULT_MAX_ADAPTERS
            max_rank = o.max_lora_rank or lora_api.DEFAULT_MAX_LORA_RANK
            args += vllm_lora_args(max(max_loras, len(o.lora)), max_rank)[1:]
        else:
            if len(o.lora) > 1:
                args += ["--max-loras", str(len(o.lora))]
            if o.max_lora_rank is not None:
                args += ["--max-lora-rank", str(o.max_lora_rank)]
    if o.pooling is not None:
        if o.pooling not in _POOLING:
            raise errors.LoadError(f"vLLM has no {o.pooling!r} pooling; use one of {', '.join(_POOLING)}")
        args += ["--pooler-config", json.dumps({"pooling_type": _POOLING[o.pooling]}, separators=(",", ":"))]
    if o.tool_call_parser:
        args += ["--enable-auto-tool-choice", "--tool-call-parser", o.tool_call_parser]
    generation = {
        key: value
        for key, value in (
            ("temperature", o.generation.temperature),
            ("top_p", o.generation.top_p),
            ("max_new_tokens", o.generation.max_tokens),
        )
        if value is not None
    }
    if generation:
        args += ["--override-generation-config", json.dumps(generation, separators=(",", ":"))]
    for key, value in sorted(o.engine_args, key=lambda kv: _flag(kv[0])):
        args.append(_flag(key))
        if value is not None:
            args.append(value)
    return args


def vllm_lora_args(max_adapters: int, max_rank: int) -> list[str]:
    """vLLM's flags for up to ``max_adapters`` LoRA adapters of rank up to ``max_rank`` at once."""
    if max_adapters < 1 or max_rank < 1:
        raise errors.LoadError(
            f"max adapters ({max_adapters}) and max LoRA rank ({max_rank}) must be positive"
        )
    return ["--enable-lora", "--max-loras", str(max_adapters), "--max-lora-rank", str(max_rank)]


def environment(o: VllmOptions) -> dict[str, str]:
    """Variables vLLM's process needs on top of the pod's: the runtime LoRA switch when adapters
    may come while it serves."""
    return {lora_api.VLLM_RUNTIME_LORA_ENV: "True"} if o.live_lora else {}


def command(o: VllmOptions, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", MODULE, *build_vllm_args(o)]


def exec_vllm(o: VllmOptions, execvp: Callable[[str, list[str]], object] | None = None) -> None:
    """Replace this process with vLLM's server (returns only when ``execvp`` is a stand-in)."""
    argv = command(o)
    os.environ.update(environment(o))
    print("exec:", " ".join(argv), file=sys.stderr, flush=True)
    (execvp or os.execvp)(argv[0], argv)
