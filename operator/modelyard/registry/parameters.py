"""Parameter counts from a ``config.json``, one formula per kind of transformer.

Split from :mod:`modelyard.registry.estimates` so that the arithmetic of each architecture
(decoder-only LLMs, BERT-style encoders, Whisper, Qwen-VL vision towers) reads on its own.
The counts are checked against published counts of real configs (tests/registry).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard.registry import architectures, errors

ENCODER_FAMILIES = frozenset({"bert"})


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language-model part: ``text_config`` of a VLM when it holds the sizes, else all."""
    nested = config.get("text_config")
    if isinstance(nested, Mapping) and "hidden_size" in nested:
        return nested
    return config


def count_field(cfg: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = cfg.get(name)
    if value is None:
        if default is None:
            raise errors.ConfigError(f"config.json: missing field {name!r}")
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.ConfigError(f"config.json: field {name!r} must be a count, got {value!r}")
    return value


def _decoder(cfg: Mapping[str, Any], tied: bool, pooled: bool) -> tuple[int, int]:
    """(embedding + lm_head, everything else) of a decoder-only transformer."""
    h, layers = count_field(cfg, "hidden_size"), count_field(cfg, "num_hidden_layers")
    heads = count_field(cfg, "num_attention_heads")
    kv_heads = count_field(cfg, "num_key_value_heads", heads)
    head_dim = count_field(cfg, "head_dim", h // heads)
    vocab = count_field(cfg, "vocab_size")
    q, kv = heads * head_dim, kv_heads * head_dim
    attention = h * q + 2 * h * kv + q * h
    model_type = str(cfg.get("model_type", ""))
    if cfg.get("attention_bias") or model_type.startswith("qwen2"):
        attention += q + 2 * kv  # q/k/v biases (Qwen2 always has them)
    if model_type.startswith(("qwen3", "gemma3")):
        attention += 2 * head_dim  # q_norm, k_norm
    experts = count_field(cfg, "num_experts", 0) or count_field(cfg, "num_local_experts", 0)
    if model_type == "phi":  # Phi-1/2: fc1/fc2 with biases, biased attention, one LayerNorm
        inter = count_field(cfg, "intermediate_size")
        mlp = 2 * h * inter + inter + h
        attention += q + 2 * kv + h
        norms = 2 * h
    elif experts:
        inter = count_field(cfg, "moe_intermediate_size", 0) or count_field(cfg, "intermediate_size")
        mlp = experts * 3 * h * inter + h * experts  # experts + router
        norms = 2 * h
    else:
        mlp = 3 * h * count_field(cfg, "intermediate_size")  # gate, up, down
        norms = (4 if model_type.startswith(("gemma2", "gemma3")) else 2) * h
    body = layers * (attention + mlp + norms) + h  # + final norm
    embedding = vocab * h * (1 if tied or pooled else 2)
    if model_type == "phi" and not pooled:
        body += vocab + h  # lm_head bias, final LayerNorm bias
    return embedding, body


def _encoder(cfg: Mapping[str, Any], architecture: str) -> tuple[int, int]:
    """(embeddings, everything else) of a BERT-style encoder with absolute positions."""
    h, layers = count_field(cfg, "hidden_size"), count_field(cfg, "num_hidden_layers")
    inter = count_field(cfg, "intermediate_size")
    vocab = count_field(cfg, "vocab_size")
    positions = count_field(cfg, "max_position_embeddings")
    model_type = str(cfg.get("model_type", ""))
    if model_type.startswith("deberta"):
        relative = count_field(cfg, "position_buckets", 0) or count_field(cfg, "max_relative_positions", 0)
        rel_rows = 2 * (relative if relative > 0 else positions)
        positions = positions if cfg.get("position_biased_input", True) else 0
        extra = rel_rows * h if cfg.get("relative_attention") else 0
    else:
        extra = 0
    tokens = vocab + positions + count_field(cfg, "type_vocab_size", 0)
    embedding = tokens * h + 2 * h + extra  # + LayerNorm
    layer = 4 * (h * h + h) + (h * inter + inter) + (inter * h + h) + 2 * 2 * h
    body = layers * layer
    if architecture.endswith("ForSequenceClassification"):
        labels = max(1, len(cfg.get("id2label") or {}) or 1)
        body += (h * h + h) + (h * labels + labels)  # pooler/dense + classifier
    elif architecture.endswith("ForMaskedLM"):
        body += (h * h + h) + 2 * h + vocab  # transform, LayerNorm, decoder bias (weights tied)
    elif not model_type.startswith("deberta"):
        body += h * h + h  # pooler
    return embedding, body


def _whisper(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """(token embedding, everything else) of Whisper; the output projection is tied."""
    d = count_field(cfg, "d_model")
    mels = count_field(cfg, "num_mel_bins")
    enc_ffn, dec_ffn = count_field(cfg, "encoder_ffn_dim"), count_field(cfg, "decoder_ffn_dim")
    attention = 4 * d * d + 3 * d  # q, k, v, out; k has no bias
    conv = (mels * d * 3 + d) + (d * d * 3 + d)
    encoder_layer = attention + 2 * d * enc_ffn + enc_ffn + d + 2 * 2 * d
    decoder_layer = 2 * attention + 2 * d * dec_ffn + dec_ffn + d + 3 * 2 * d
    body = (
        conv
        + count_field(cfg, "max_source_positions") * d
        + count_field(cfg, "encoder_layers") * encoder_layer
        + 2 * d
        + count_field(cfg, "max_target_positions") * d
        + count_field(cfg, "decoder_layers") * decoder_layer
        + 2 * d
    )
    return count_field(cfg, "vocab_size") * d, body


def _vision_tower(config: Mapping[str, Any]) -> int:
    """Parameters of a Qwen-VL vision tower (ViT blocks, patch embedding, patch merger)."""
    vision = config.get("vision_config")
    if not isinstance(vision, Mapping):
        return 0
    depth = count_field(vision, "depth")
    channels = count_field(vision, "in_chans", 0) or count_field(vision, "in_channels", 3)
    patch = count_field(vision, "patch_size", 14)
    temporal = count_field(vision, "temporal_patch_size", 2)
    merge = count_field(vision, "spatial_merge_size", 2)
    if "embed_dim" in vision:  # Qwen2-VL: GELU MLP fc1/fc2, hidden_size is the output size
        d = count_field(vision, "embed_dim")
        inter = d * count_field(vision, "mlp_ratio", 4)
        out = count_field(vision, "hidden_size")
        mlp = 2 * d * inter + inter + d
    else:  # Qwen2.5-VL: gated SiLU MLP; Qwen3-VL: fc1/fc2
        d = count_field(vision, "hidden_size")
        inter = count_field(vision, "intermediate_size")
        out = count_field(vision, "out_hidden_size")
        gated = str(config.get("model_type", "")).startswith("qwen2")
        mlp = (3 * d * inter + 2 * inter + d) if gated else (2 * d * inter + inter + d)
    block = (d * 3 * d + 3 * d) + (d * d + d) + mlp + 2 * 2 * d
    merged = d * merge * merge
    merger = 2 * d + (merged * merged + merged) + (merged * out + out)
    mergers = 1 + len(vision.get("deepstack_visual_indexes") or ())  # Qwen3-VL deepstack
    patch_embed = channels * temporal * patch * patch * d + d
    positions = count_field(vision, "num_position_embeddings", 0) * d  # Qwen3-VL learned positions
    return depth * block + patch_embed + positions + mergers * merger


def counts(config: Mapping[str, Any]) -> tuple[int, int]:
    """(parameters kept in 16-bit under quantization: embeddings, all the others)."""
    info = architectures.detect(config)
    if info.family == "whisper":
        return _whisper(config)
    if info.family in ENCODER_FAMILIES:
        return _encoder(config, info.architecture)
    pooled = info.category == "embedding"
    text = text_config(config)
    tied = text.get("tie_word_embeddings", config.get("tie_word_embeddings", info.family == "gemma"))
    embedding, body = _decoder(text, bool(tied), pooled)
    return embedding, body + _vision_tower(config)


def parameter_count(config: Mapping[str, Any]) -> int:
    """Total parameters the checkpoint holds (vision tower included for Qwen-VL)."""
    embedding, body = counts(config)
    return embedding + body
