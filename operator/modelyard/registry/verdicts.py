"""Can this ModelEntry be fine-tuned, or served on these GPUs? Each answer is a :class:`Verdict`
``(ok, reason)``: never an exception for a model that merely cannot run, a reason a person can
act on (which GPU memory it needs, which method to try) when it cannot.

The memory checks use the entry's resolved config when there is one (:func:`estimates.fit`:
weights, KV cache, activations), else its ``requirements.minVramGb``, else say what was not
checked. Used by the admission webhook, the TrainingJob reconcile, the status API's registry
routes and :class:`~.catalog.Catalog`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from modelyard import api
from modelyard.api import model_entry, training_job
from modelyard.registry import errors, estimates, gpus, resolve

# Bytes of GPU memory per parameter a fine-tune needs (weights, gradients, optimizer state).
_TRAINING_BYTES_PER_PARAM = {"full": 16.0, "lora": 2.4, "qlora": 0.9}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMBT])$")
_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


class Verdict(NamedTuple):
    """``(ok, reason)``: reason says why not, or notes worth showing when ok."""

    ok: bool
    reason: str | None


def parameters_from_text(text: str | None) -> int | None:
    """``"1.1B"`` -> 1_100_000_000."""
    match = _SIZE.match(text or "")
    return int(float(match.group(1)) * _SCALE[match.group(2)]) if match else None


def validate_training(
    entry: api.ModelEntry, method: training_job.Method = "lora", gpu_memory_gib: float | None = None
) -> Verdict:
    """Can ``entry`` be fine-tuned with ``method`` (on a GPU of ``gpu_memory_gib``)?"""
    resolved = resolve.resolve(entry)
    name = resolved.served_name
    if not resolved.ok:
        return Verdict(False, f"{name} is invalid: {resolved.reason}")
    if entry.spec.lifecycle == "deprecated":
        return Verdict(False, f"{name} is deprecated; pick a stable or experimental model")
    if entry.spec.engine == "upstream":
        return Verdict(False, f"{name} is an upstream proxy model; its weights are not here to train")
    if not resolved.capabilities.training:
        return Verdict(
            False, f"{name} cannot be trained (capabilities.training is false, category {resolved.category})"
        )
    if gpu_memory_gib is None:
        return Verdict(True, None)
    params = (
        resolved.estimate.parameters if resolved.estimate else parameters_from_text(entry.spec.parameters)
    )
    if params is None:
        return Verdict(True, f"no parameter count for {name}: GPU memory not checked")
    needed = params * _TRAINING_BYTES_PER_PARAM[method] / estimates.GIB + estimates.CUDA_CONTEXT_GIB
    if needed > gpu_memory_gib:
        return Verdict(
            False,
            f"{method} fine-tuning of {name} ({estimates.human_count(params)} parameters) needs about "
            f"{needed:.1f} GiB of GPU memory but the GPU has {gpu_memory_gib:g} GiB"
            + ("; try method lora or qlora" if method == "full" else ""),
        )
    return Verdict(True, None)


def validate_inference(
    entry: api.ModelEntry,
    *,
    gpu_type: str | None = None,
    gpu_memory_gib: float | None = None,
    gpu_count: int = 1,
    max_model_len: int | None = None,
    gpu_memory_utilization: float | None = None,
) -> Verdict:
    """Can ``entry`` be served on ``gpu_count`` GPUs of ``gpu_type`` (or ``gpu_memory_gib``)?"""
    resolved = resolve.resolve(entry)
    name = resolved.served_name
    if not resolved.ok:
        return Verdict(False, f"{name} is invalid: {resolved.reason}")
    if not resolved.capabilities.inference:
        return Verdict(False, f"{name} cannot serve inference (capabilities.inference is false)")
    note = f"{name} is deprecated" if entry.spec.lifecycle == "deprecated" else None
    if entry.spec.engine == "upstream":
        return Verdict(True, note)
    if gpu_type is not None:
        try:
            gpu_memory_gib = gpus.memory_gib(gpu_type)
        except errors.RegistryError as exc:
            return Verdict(False, str(exc))
    if gpu_memory_gib is None:
        return Verdict(True, note)
    defaults = entry.spec.inference_defaults or model_entry.InferenceDefaults()
    utilization = gpu_memory_utilization or defaults.gpu_memory_utilization or 0.9
    tokens = max_model_len or defaults.max_model_len
    label = f"{gpu_count}x {gpu_type or f'{gpu_memory_gib:g} GiB GPU'}"
    if resolved.config:
        result = estimates.fit(
            resolved.config,
            gpu_memory_gib=gpu_memory_gib,
            gpus=gpu_count,
            gpu_memory_utilization=utilization,
            max_model_len=tokens,
        )
        text = f"{name} on {label}: {result.reason}"
        return Verdict(result.fits, f"{text}; {note}" if note and result.fits else text)
    needed = resolved.requirements.min_vram_gb
    if needed is None:
        return Verdict(True, _join(note, f"no requirements known for {name}: GPU memory not checked"))
    available = gpu_memory_gib * gpu_count
    if needed > available:
        return Verdict(
            False,
            f"{name} needs at least {needed:g} GiB of GPU memory (requirements.minVramGb) "
            f"but {label} has {available:g} GiB",
        )
    return Verdict(True, note)


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None
