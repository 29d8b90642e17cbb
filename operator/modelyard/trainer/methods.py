"""Load the base model for a method: LoRA adapters, QLoRA (4-bit base + adapters) or full weights.

QLoRA needs bitsandbytes and a CUDA GPU; on a CPU-only pod it fails at once with what is
missing rather than deep inside a kernel. 8-bit optimisers need the same, so on CPU they fall
back to their plain torch counterpart (recorded in the manifest).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from modelyard.trainer import config, errors

_EIGHT_BIT_OPTIMS = {
    "adamw_8bit": "adamw_torch",
    "paged_adamw_8bit": "adamw_torch",
    "adamw_bnb_8bit": "adamw_torch",
}


def has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def has_bitsandbytes() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def check(cfg: config.TrainerConfig) -> None:
    """Fail fast when the method cannot run here."""
    if cfg.method != "qlora":
        return
    missing = [
        what for what, ok in (("a CUDA GPU", has_cuda()), ("bitsandbytes", has_bitsandbytes())) if not ok
    ]
    if missing:
        raise errors.MethodUnavailable(
            f"method qlora (4-bit base model + LoRA) needs {' and '.join(missing)}, which this pod lacks; "
            "request resources.gpus on a CUDA node with the train image, or use method lora or full"
        )


def optimizer(name: str) -> str:
    """The optimizer transformers should use here: 8-bit ones only with CUDA + bitsandbytes."""
    if name in _EIGHT_BIT_OPTIMS and not (has_cuda() and has_bitsandbytes()):
        return _EIGHT_BIT_OPTIMS[name]
    return name


def load(cfg: config.TrainerConfig) -> tuple[Any, Any]:
    """(model ready to train, tokenizer)."""
    import torch
    import transformers

    check(cfg)
    tokenizer = transformers.AutoTokenizer.from_pretrained(cfg.model_path, revision=cfg.revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"revision": cfg.revision}
    if cfg.method == "qlora":
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
        kwargs["device_map"] = "auto"
    model = transformers.AutoModelForCausalLM.from_pretrained(cfg.model_path, **kwargs)
    if cfg.method == "full":
        return model, tokenizer
    import peft

    if cfg.method == "qlora":
        model = peft.prepare_model_for_kbit_training(model)  # type: ignore[no-untyped-call]
    lora = cfg.lora or config.LORA_DEFAULTS
    lora_config = peft.LoraConfig(
        r=int(lora["r"]),
        lora_alpha=int(lora["lora_alpha"]),
        lora_dropout=float(lora["lora_dropout"]),
        target_modules=list(lora["target_modules"]),
        use_rslora=bool(lora["use_rslora"]),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora_config), tokenizer
