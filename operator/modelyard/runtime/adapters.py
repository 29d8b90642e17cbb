"""A LoRA adapter on the transformers engine: the base model with the adapter merged in.

vLLM serves adapters natively (``--enable-lora``). The transformers engine serves one model
per handler, so one adapter is applied with ``peft.PeftModel.from_pretrained(base, path)``,
merged into the base weights, and saved to a scratch directory that the usual loader then
serves under the adapter's name: every handler (chat, completion, batching) works unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import tempfile
from collections.abc import Sequence

from modelyard.runtime import errors, options

log = logging.getLogger("modelyard.runtime.adapters")


def adapter_path(uri: str) -> str:
    """``file:///out/run`` -> ``/out/run``; a plain path stays as it is."""
    return uri.removeprefix("file://")


def merge(
    base: str, adapter: str, *, revision: str | None = None, cache_dir: str | None = None
) -> pathlib.Path:
    """Base + adapter merged into plain weights in a new scratch directory (with the tokenizer)."""
    try:
        import peft
        import transformers
    except ImportError as exc:
        raise errors.LoadError(f"--lora with --engine transformers needs peft installed: {exc}") from exc
    path = adapter_path(adapter)
    if not (pathlib.Path(path) / "adapter_config.json").is_file():
        raise errors.LoadError(f"--lora {adapter}: no adapter_config.json there (not a peft adapter)")
    model = transformers.AutoModelForCausalLM.from_pretrained(base, revision=revision, cache_dir=cache_dir)
    merged = peft.PeftModel.from_pretrained(model, path).merge_and_unload()
    target = pathlib.Path(tempfile.mkdtemp(prefix="modelyard-adapter-"))
    merged.save_pretrained(str(target))
    tokenizer_from = path if (pathlib.Path(path) / "tokenizer_config.json").is_file() else base
    transformers.AutoTokenizer.from_pretrained(
        tokenizer_from, revision=revision, cache_dir=cache_dir
    ).save_pretrained(str(target))
    log.info("merged adapter %s into %s at %s", path, base, target)
    return target


def with_adapter(
    specs: Sequence[options.ModelSpec], lora: Sequence[tuple[str, str]], *, cache_dir: str | None = None
) -> list[options.ModelSpec]:
    """The one model to serve, its adapter merged in and named after the adapter."""
    if len(lora) != 1 or len(specs) != 1:
        raise errors.LoadError("--engine transformers serves one model with at most one --lora adapter")
    (name, uri), spec = lora[0], specs[0]
    merged = merge(spec.source, uri, revision=spec.revision, cache_dir=cache_dir)
    return [dataclasses.replace(spec, source=str(merged), served_name=name, provider="local", revision=None)]
