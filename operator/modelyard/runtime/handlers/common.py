"""What every built-in handler shares: the constructor's options, device and dtype choice, and
(:class:`Pretrained`) the start of every encoder and speech handler's constructor."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.runtime import errors, providers

_DTYPES = {
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "float32": "float32",
    "float": "float32",
}


@dataclasses.dataclass
class HandlerOptions:
    """The keyword arguments the server gives every handler constructor (beyond repo and device)."""

    name: str
    provider: providers.ModelProvider
    pooling: str | None = None
    dtype: str | None = None
    max_model_len: int | None = None
    generation_defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    supports_structured_outputs: bool | None = None

    @classmethod
    def from_kwargs(cls, hf_repo_id: str, cache_dir: str | None, kwargs: Mapping[str, Any]) -> HandlerOptions:
        provider = kwargs.get("provider")
        if provider is None:
            provider = providers.create_provider(
                "huggingface", cache_dir=cache_dir, revision=kwargs.get("revision")
            )
        defaults = kwargs.get("generation_defaults") or {}
        return cls(
            name=str(kwargs.get("name") or hf_repo_id),
            provider=provider,
            pooling=kwargs.get("pooling"),
            dtype=kwargs.get("dtype"),
            max_model_len=kwargs.get("max_model_len"),
            generation_defaults={k: v for k, v in dict(defaults).items() if v is not None},
            supports_structured_outputs=kwargs.get("supports_structured_outputs"),
        )


class Pretrained:
    """A handler of one checkpoint: reads its options, takes its served name, picks its device,
    then has the subclass load its model (:meth:`_load`)."""

    owned_by = "modelyard"

    def __init__(
        self, hf_repo_id: str, device: str | None = None, cache_dir: str | None = None, **kwargs: Any
    ) -> None:
        self.options = HandlerOptions.from_kwargs(hf_repo_id, cache_dir, kwargs)
        self.name = self.options.name
        self.device = resolve_device(device)
        self._load(hf_repo_id)

    def _load(self, hf_repo_id: str) -> None:
        raise NotImplementedError


def max_length(options: HandlerOptions, model: Any, tokenizer: Any) -> int:
    """The longest input an encoder takes: ``--max-model-len``, else the model's positions (512
    when it says none), never above the tokenizer's own limit."""
    limit = options.max_model_len or getattr(model.config, "max_position_embeddings", None) or 512
    return int(min(limit, getattr(tokenizer, "model_max_length", limit) or limit))


def resolve_device(device: Any) -> str:
    if device:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_kwargs(dtype: str | None) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for a dtype flag (``auto`` or None: the checkpoint's)."""
    if dtype in (None, "", "auto"):
        return {}
    import torch

    name = _DTYPES.get(str(dtype))
    if name is None:
        raise errors.LoadError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(sorted(_DTYPES))}")
    return {"dtype": getattr(torch, name)}


def load_pretrained(
    options: HandlerOptions,
    hf_repo_id: str,
    device: str,
    model_class: str,
    tokenizer_class: str = "AutoTokenizer",
) -> tuple[Any, Any]:
    """The tokenizer (or processor) and the model, through the handler's provider, the model
    on ``device`` in eval mode: what every built-in handler loads first."""
    tokenizer = options.provider.load_tokenizer(hf_repo_id, tokenizer_class=tokenizer_class)
    model = options.provider.load_model(hf_repo_id, model_class, **model_kwargs(options.dtype))
    model.to(device).eval()
    return tokenizer, model


def text_decoder(tokenizer: Any) -> Callable[[Any], str]:
    """Token ids to text without special tokens: ``tokenizer.decode(ids, skip_special_tokens=True)``.

    Streaming decodes the newest tokens of every sequence after every step, so this runs twice
    per token per sequence. A fast tokenizer's Rust decoder is called directly when
    transformers' Python layer would not change its text (no clean-up of tokenization spaces):
    that layer costs several times the decoding itself for a few tokens.
    """
    backend = getattr(tokenizer, "_tokenizer", None)
    rust_decode = getattr(backend, "decode", None)
    if not callable(rust_decode) or getattr(tokenizer, "clean_up_tokenization_spaces", False):
        return lambda ids: str(tokenizer.decode(ids, skip_special_tokens=True))

    def decode(ids: Any) -> str:
        if not isinstance(ids, list):  # a tensor or another sequence of ids
            ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return str(rust_decode(ids, skip_special_tokens=True))

    return decode
