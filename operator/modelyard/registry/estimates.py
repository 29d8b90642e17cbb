"""How big a model is and whether it fits a GPU, from its ``config.json`` alone.

The operator must answer "will this endpoint run on these GPUs?" at admission time, before any
weights are downloaded, so that the webhook can deny an impossible ModelEndpoint and a
ModelEntry can show ``requirements`` nobody had to type. Every number here is arithmetic on
config fields; the formulas are spelled out next to the code that applies them.

Memory model of one serving GPU (vLLM-like), per tensor-parallel rank:

    weights / tp  +  kv_cache / tp  +  overhead   <=   gpu_memory_gib * gpu_memory_utilization

    kv_cache = kv_bytes_per_token * max_model_len * max_num_seqs
    overhead = 1 GiB (CUDA context, allocator, graphs)
             + max_model_len * hidden_size * 32 bytes (activations of one prefill; not split
               by tensor parallelism, so the estimate errs on the safe side)

Checkpoint dtype is the default for weights (``torch_dtype`` / ``dtype``, float32 when absent as
in transformers); pass ``dtype`` for what the engine will use. Quantized checkpoints store their
linear layers in ``bits/8`` bytes plus one fp16 scale and zero per group; embeddings stay 16-bit.

It stays one module (~360 lines) on purpose: the formulas above are one memory model, and
:func:`fit` and :func:`estimate` apply the same weight, KV-cache and overhead terms; kept
together, a change to one term is seen next to every use of it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from modelyard.registry import architectures, errors, parameters

__all__ = [
    "Estimate",
    "FitResult",
    "bytes_per_param",
    "default_max_model_len",
    "estimate",
    "fit",
    "human_count",
    "kv_cache_bytes_per_token",
    "parameter_count",
    "weight_bytes",
]

GIB = 1024**3
CUDA_CONTEXT_GIB = 1.0
ACTIVATION_BYTES_PER_HIDDEN_UNIT = 32  # per token of max_model_len, per unit of hidden_size
DEFAULT_MAX_MODEL_LEN_CAP = 8192  # default context: the model's own, capped here
MIN_CONTEXT = 1024  # context behind min_vram_gb
RECOMMENDED_HEADROOM = 1.2
RAM_FACTOR = 1.2  # host memory while loading: weights plus buffers

_DTYPE_BYTES: dict[str, float] = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
    "float8": 1, "fp8": 1, "float8_e4m3fn": 1, "float8_e5m2": 1, "int8": 1,
    "int4": 0.5, "4bit": 0.5,
}  # fmt: skip


parameter_count = parameters.parameter_count

# --- bytes -------------------------------------------------------------------------------


def _checkpoint_dtype(config: Mapping[str, Any]) -> str:
    for cfg in (config, parameters.text_config(config)):
        for key in ("torch_dtype", "dtype"):
            value = cfg.get(key)
            if isinstance(value, str) and value != "auto":
                return value.removeprefix("torch.")
    return "float32"


def _quantization(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    quant = parameters.text_config(config).get("quantization_config") or config.get("quantization_config")
    return quant if isinstance(quant, Mapping) else None


def _quantized_bytes(quant: Mapping[str, Any]) -> float:
    method = str(quant.get("quant_method", "")).lower()
    if method == "fp8" or quant.get("load_in_8bit"):
        return 1.0
    if quant.get("load_in_4bit"):  # bitsandbytes nf4/fp4: fp32 absmax per block of 64
        return 0.5 + 4 / 64
    bits = quant.get("bits", quant.get("w_bit"))
    group = quant.get("group_size", quant.get("q_group_size", 128))
    for group_config in (quant.get("config_groups") or {}).values():  # compressed-tensors
        weights = group_config.get("weights") or {}
        bits, group = weights.get("num_bits", bits), weights.get("group_size") or group
    if not isinstance(bits, int):
        raise errors.ConfigError(
            f"config.json: quantization_config ({method or 'unknown method'}) has no 'bits'"
        )
    per_group = 4 / group if isinstance(group, int) and group > 0 else 0.0  # fp16 scale + zero
    return bits / 8 + per_group


def bytes_per_param(config: Mapping[str, Any], dtype: str | None = None) -> float:
    """Bytes per weight of the linear layers: ``dtype`` if given, else quantization_config,
    else the checkpoint's dtype."""
    quant = _quantization(config)
    if dtype is not None and dtype != "auto":
        name = dtype.lower().removeprefix("torch.")
        if name in {"nf4", "fp4", "awq", "gptq"}:
            return 0.5 + 4 / 128
        if name not in _DTYPE_BYTES:
            raise errors.ConfigError(f"unknown dtype {dtype!r}; known: {', '.join(_DTYPE_BYTES)}")
        if quant is None or _DTYPE_BYTES[name] < 2:
            return _DTYPE_BYTES[name]
        # a 16/32-bit dtype of a quantized checkpoint is the activation dtype (vLLM --dtype)
    if quant is not None:
        return _quantized_bytes(quant)
    name = _checkpoint_dtype(config)
    if name not in _DTYPE_BYTES:
        raise errors.ConfigError(f"config.json: torch_dtype {name!r} is not a known dtype")
    return _DTYPE_BYTES[name]


def _dtype_name(config: Mapping[str, Any], dtype: str | None) -> str:
    quant = _quantization(config)
    if dtype is not None and dtype != "auto" and (quant is None or bytes_per_param({}, dtype) < 2):
        return dtype
    if quant is not None:
        method = str(quant.get("quant_method", "quantized"))
        return f"{method}-{bytes_per_param(config) * 8:.2g}bit"
    return _checkpoint_dtype(config)


def weight_bytes(config: Mapping[str, Any], dtype: str | None = None) -> int:
    """Bytes of all weights. Under quantization the embeddings stay in 16 bits."""
    embedding, body = parameters.counts(config)
    per_param = bytes_per_param(config, dtype)
    embedding_bytes = per_param if per_param >= 2 else 2.0
    return math.ceil(body * per_param + embedding * embedding_bytes)


def _kv_dtype_bytes(config: Mapping[str, Any], dtype: str | None) -> float:
    """The KV cache follows the weights' float dtype; quantized weights keep a 16-bit cache."""
    per_param = bytes_per_param(config, dtype)
    return 2.0 if _quantization(config) or per_param < 2 else per_param


def kv_cache_bytes_per_token(config: Mapping[str, Any], kv_dtype_bytes: float | None = None) -> int:
    """K and V of every layer for one token: ``2 * layers * kv_heads * head_dim * bytes``.

    0 for encoders (BERT family, bidirectional Gemma embedders): they keep no cache. Whisper
    counts its decoder self-attention (the cross-attention cache is fixed per request). The
    default dtype is the weights' (16-bit for quantized weights).
    """
    info = architectures.detect(config)
    cfg = parameters.text_config(config)
    if info.family in parameters.ENCODER_FAMILIES or cfg.get("use_bidirectional_attention"):
        return 0
    if kv_dtype_bytes is None:
        kv_dtype_bytes = _kv_dtype_bytes(config, None)
    if info.family == "whisper":
        return math.ceil(
            2
            * parameters.count_field(cfg, "decoder_layers")
            * parameters.count_field(cfg, "d_model")
            * kv_dtype_bytes
        )
    heads = parameters.count_field(cfg, "num_attention_heads")
    kv_heads = parameters.count_field(cfg, "num_key_value_heads", heads)
    head_dim = parameters.count_field(cfg, "head_dim", parameters.count_field(cfg, "hidden_size") // heads)
    return math.ceil(
        2 * parameters.count_field(cfg, "num_hidden_layers") * kv_heads * head_dim * kv_dtype_bytes
    )


def default_max_model_len(config: Mapping[str, Any]) -> int:
    """The context an estimate assumes: the model's own, capped at 8192 tokens (what most
    deployments serve; pass ``max_model_len`` for long-context ones)."""
    cfg = parameters.text_config(config)
    own = cfg.get("max_position_embeddings") or cfg.get("max_target_positions")
    if not isinstance(own, int) or own <= 0:
        return DEFAULT_MAX_MODEL_LEN_CAP
    return min(own, DEFAULT_MAX_MODEL_LEN_CAP)


def _hidden_size(config: Mapping[str, Any]) -> int:
    cfg = parameters.text_config(config)
    return parameters.count_field(cfg, "hidden_size", 0) or parameters.count_field(cfg, "d_model")


def _overhead_bytes(config: Mapping[str, Any], tokens: int) -> float:
    return CUDA_CONTEXT_GIB * GIB + tokens * _hidden_size(config) * ACTIVATION_BYTES_PER_HIDDEN_UNIT


def _attention_heads(config: Mapping[str, Any]) -> int:
    cfg = parameters.text_config(config)
    return parameters.count_field(cfg, "num_attention_heads", 0) or parameters.count_field(
        cfg, "encoder_attention_heads"
    )


@dataclasses.dataclass
class FitResult:
    """Whether a model fits; every GiB figure is per GPU at the tensor-parallel size the
    reason names (the chosen one, or the largest tried when nothing fits)."""

    fits: bool
    reason: str
    tensor_parallel_size: int | None
    required_gib: float
    available_gib: float
    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fit(
    config: Mapping[str, Any],
    *,
    gpu_memory_gib: float,
    gpus: int = 1,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    dtype: str | None = None,
    max_num_seqs: int = 1,
) -> FitResult:
    """Whether the model serves ``max_num_seqs`` sequences of ``max_model_len`` tokens on
    ``gpus`` GPUs of ``gpu_memory_gib``; tries each tensor-parallel size that divides the
    attention heads, smallest first."""
    if gpus < 1 or gpu_memory_gib <= 0 or not 0 < gpu_memory_utilization <= 1:
        raise ValueError("need gpus >= 1, gpu_memory_gib > 0, 0 < gpu_memory_utilization <= 1")
    tokens = max_model_len or default_max_model_len(config)
    weights = weight_bytes(config, dtype) / GIB
    kv_per_token = kv_cache_bytes_per_token(config, _kv_dtype_bytes(config, dtype))
    kv = kv_per_token * tokens * max_num_seqs / GIB
    overhead = _overhead_bytes(config, tokens) / GIB
    available = gpu_memory_gib * gpu_memory_utilization
    heads = _attention_heads(config)
    sizes = [tp for tp in range(1, gpus + 1) if heads % tp == 0]
    tp = sizes[-1]
    for size in sizes:
        if weights / size + kv / size + overhead <= available:
            tp = size
            break
    required = weights / tp + kv / tp + overhead
    fits = required <= available
    seqs = f"{max_num_seqs} x " if max_num_seqs > 1 else ""
    with_tp = f" with tensor_parallel_size={tp}" if tp > 1 else ""
    per_gpu = " per GPU" if gpus > 1 else ""
    reason = (
        f"needs {required:.1f} GiB per GPU{with_tp} (weights {weights / tp:.1f}, "
        f"KV cache {kv / tp:.1f} for {seqs}{tokens} tokens, overhead {overhead:.1f}) "
        f"{'and' if fits else 'but'} {gpus}x{gpu_memory_gib:g} GiB at "
        f"{gpu_memory_utilization:.2f} utilization gives {available:.1f} GiB{per_gpu}; "
    )
    if fits:
        reason += f"fits with tensor_parallel_size={tp}"
    elif tp > 1:
        reason += f"does not fit even with tensor_parallel_size={tp}"
    else:
        reason += "does not fit"
    return FitResult(
        fits=fits,
        reason=reason,
        tensor_parallel_size=tp if fits else None,
        required_gib=round(required, 2),
        available_gib=round(available, 2),
        weights_gib=round(weights / tp, 2),
        kv_cache_gib=round(kv / tp, 2),
        overhead_gib=round(overhead, 2),
    )


@dataclasses.dataclass
class Estimate:
    """What a ModelEntry's status shows about size and requirements.

    ``min_vram_gb``: weights + KV cache for 1024 tokens + overhead, on one GPU.
    ``recommended_vram_gb``: weights + KV cache for ``max_model_len`` + overhead, plus 20%.
    ``min_ram_gb``: host memory to load the weights (weights * 1.2). All GiB, rounded up.
    ``min_gpus``: the smallest tensor-parallel size that fits GPUs of ``gpu_memory_gib`` (1 when
    no GPU size is given, 0 when no size up to the number of attention heads fits).
    """

    architecture: str
    family: str
    category: str
    parameters: int
    parameters_human: str
    dtype: str
    weight_bytes: int
    kv_cache_bytes_per_token: int
    max_model_len: int
    min_vram_gb: int
    recommended_vram_gb: int
    min_ram_gb: int
    min_gpus: int
    fit: FitResult | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def estimate(
    config: Mapping[str, Any],
    *,
    gpu_memory_gib: float | None = None,
    gpus: int = 1,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    dtype: str | None = None,
) -> Estimate:
    """Size, memory requirements and (when a GPU size is given) the fit of a model."""
    info = architectures.detect(config)
    tokens = max_model_len or default_max_model_len(config)
    weights = weight_bytes(config, dtype)
    kv_per_token = kv_cache_bytes_per_token(config, _kv_dtype_bytes(config, dtype))
    small = min(MIN_CONTEXT, tokens)
    minimum = weights + kv_per_token * small + _overhead_bytes(config, small)
    full = weights + kv_per_token * tokens + _overhead_bytes(config, tokens)
    result = None
    min_gpus = 1
    if gpu_memory_gib is not None:

        def on(count: int) -> FitResult:
            return fit(
                config,
                gpu_memory_gib=gpu_memory_gib,
                gpus=count,
                gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=tokens,
                dtype=dtype,
            )

        result = on(gpus)
        min_gpus = on(max(gpus, _attention_heads(config))).tensor_parallel_size or 0
    parameters = parameter_count(config)
    return Estimate(
        architecture=info.architecture,
        family=info.family,
        category=info.category,
        parameters=parameters,
        parameters_human=human_count(parameters),
        dtype=_dtype_name(config, dtype),
        weight_bytes=weights,
        kv_cache_bytes_per_token=kv_per_token,
        max_model_len=tokens,
        min_vram_gb=math.ceil(minimum / GIB),
        recommended_vram_gb=math.ceil(full * RECOMMENDED_HEADROOM / GIB),
        min_ram_gb=math.ceil(weights * RAM_FACTOR / GIB),
        min_gpus=min_gpus,
        fit=result,
    )


def human_count(n: int) -> str:
    """Three significant digits and a suffix: ``1_235_814_400`` -> ``"1.24B"``,
    ``109_482_240`` -> ``"109M"``."""
    for scale, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= scale * 0.9995:
            return f"{n / scale:.3g}{suffix}"
    return str(n)
