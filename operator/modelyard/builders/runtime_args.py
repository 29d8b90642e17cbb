"""The runtime container's arguments, per engine (KubeAI builds vLLM's the same way).

Engine options are the entry's ``inferenceDefaults`` with the endpoint's ``engineArgs`` on
top, keys normalised to kebab-case. Options the runtime knows become its own flags (see
docs/runtime.md); any other key goes through as ``--engine-arg key=value`` to the engine.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard import api
from modelyard.api import model_entry, wire
from modelyard.builders import adapters

# Runtime flags for known options; the value of a True boolean is the bare flag.
_KNOWN = (
    "max-model-len",
    "dtype",
    "gpu-memory-utilization",
    "quantization",
    "tensor-parallel-size",
)
# Options only the vLLM engine understands.
_VLLM_ONLY = ("gpu-memory-utilization", "tensor-parallel-size")


def kebab(key: str) -> str:
    """``maxModelLen`` / ``max_model_len`` -> ``max-model-len``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", key).replace("_", "-").lower()


def engine_options(entry: api.ModelEntry, endpoint: api.ModelEndpoint) -> dict[str, Any]:
    """inferenceDefaults merged with engineArgs, kebab-case keys, unset values dropped."""
    defaults = entry.spec.inference_defaults
    merged: dict[str, Any] = {}
    if defaults is not None:
        merged.update({kebab(k): v for k, v in defaults.model_dump(by_alias=True, exclude_none=True).items()})
    merged.update({kebab(k): v for k, v in (endpoint.spec.engine_args or {}).items() if v is not None})
    return merged


def tensor_parallel_size(options: dict[str, Any]) -> int:
    value = options.get("tensor-parallel-size", 1)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 1


def _in_pod(uri: str) -> str | None:
    """Where a ``pvc://`` or ``file://`` URI is inside the runtime pod (the Deployment mounts
    each claim at ``MODELS_ROOT/<claim>``); None for remote URIs."""
    return wire.local_path(uri, wire.MODELS_ROOT)


def model_reference(source: model_entry.ModelSource) -> tuple[str, str]:
    """(provider, what to pass as --model): a repo id, or a local path for pvc/file URIs."""
    path = _in_pod(source.uri or "")
    if path is not None:
        return "local", path
    if source.uri:
        return source.provider, source.uri
    return source.provider, source.repo or ""


def _flag(name: str, value: Any) -> list[str]:
    if value is True:
        return [f"--{name}"]
    if value is False:
        return []
    return [f"--{name}", str(value)]


def runtime_args(
    entry: api.ModelEntry,
    endpoint: api.ModelEndpoint,
    *,
    served_name: str,
    engine: str,
    port: int,
    max_adapters: int = 8,
) -> list[str]:
    """Arguments of ``modelyard runtime`` for this endpoint, in a stable order.

    Live adapters (:mod:`.adapters`): both engines get ``--adapters-file`` (the mounted
    ConfigMap) and ``--max-adapters``; the transformers runtime re-reads the file, the vLLM one
    turns them into ``--enable-lora --max-loras N --max-lora-rank R`` (and the adapters there at
    start into ``--lora-modules``), later adapters coming over vLLM's runtime LoRA API. Neither
    flag depends on the set, so changing it never changes the pod."""
    provider, model = model_reference(entry.spec.source)
    adapter = entry.spec.adapter
    # A fine-tuned entry runs its base model's source (copied into it) with the adapter on top:
    # the adapter answers to the served name, the bare base to the base entry's name.
    base_name = adapter.base_model if adapter is not None else served_name
    args = ["--model", model, "--served-name", base_name, "--engine", engine]
    args += ["--provider", provider, "--host", f"$({wire.POD_IP_ENV})", "--port", str(port)]
    if entry.spec.source.revision:
        args += ["--revision", entry.spec.source.revision]
    runtime = entry.spec.runtime
    if engine == "transformers" and runtime is not None and runtime.handler:
        args += ["--handler", runtime.handler]
    if runtime is not None and runtime.pooling:
        args += ["--pooling", runtime.pooling]
    if runtime is not None and runtime.tool_call_parser:
        args += ["--tool-call-parser", runtime.tool_call_parser]
    generation = entry.spec.generation_defaults
    if generation is not None:
        for name, value in (
            ("temperature", generation.temperature),
            ("top-p", generation.top_p),
            ("max-tokens", generation.max_tokens),
        ):
            if value is not None:
                args += [f"--{name}", str(value)]
    options = engine_options(entry, endpoint)
    routing = endpoint.spec.routing
    if engine == "vllm" and routing is not None and routing.strategy == "PrefixHash":
        # PrefixHash sends alike prompts to one pod so that its prefix cache can reuse them;
        # vLLM's is on by default in its V1 engine, said explicitly unless the user set it.
        options.setdefault("enable-prefix-caching", True)
    for key in _KNOWN:
        if key in options and (engine == "vllm" or key not in _VLLM_ONLY):
            args += _flag(key, options[key])
    if adapter is not None:
        args += ["--lora", f"{served_name}={_in_pod(adapter.uri) or adapter.uri}"]
    if engine in ("transformers", "vllm"):  # live adapters: the set is a file, the bound a flag
        args += ["--adapters-file", adapters.ADAPTERS_FILE, "--max-adapters", str(max_adapters)]
    for key in sorted(k for k in options if k not in _KNOWN):
        value = options[key]
        args += ["--engine-arg", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return args
