"""The built-in embedding handler: an encoder (or pooled decoder) with mean/cls/last/max pooling.

Forward passes may run in parallel (``max_parallelism`` 2); tokenizer calls are serialised,
because a fast tokenizer's padding and truncation settings are shared mutable state.

Pooling comes from ``--pooling`` / the catalog; when absent, from a sentence-transformers
``1_Pooling/config.json`` next to the weights, else ``last`` for decoder embedders (Qwen3,
Mistral, Qwen2) and ``mean`` otherwise. Vectors are L2-normalised.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import numpy.typing as npt
import torch

from modelyard.runtime import errors
from modelyard.runtime.handlers import common

POOLINGS = ("mean", "cls", "last", "max")
_DECODERS = ("qwen2", "qwen3", "mistral", "llama", "gemma3_text")
_ST_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "last",
}


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str, left_padded: bool = False) -> torch.Tensor:
    """Pool ``[batch, seq, dim]`` hidden states over the tokens ``mask`` marks."""
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        if left_padded:
            return hidden[:, -1]
        last = mask.sum(dim=1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if how == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


class HFEmbeddingModel(common.Pretrained):
    capabilities = ["text-embedding"]
    thread_safe = True
    max_parallelism = 2

    def _load(self, hf_repo_id: str) -> None:
        options = self.options
        self.tokenizer, self.model = common.load_pretrained(options, hf_repo_id, self.device, "AutoModel")
        self.dim = int(self.model.config.hidden_size)
        self.pooling = options.pooling or self._detect_pooling(hf_repo_id, options)
        if self.pooling not in POOLINGS:
            raise errors.LoadError(f"pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        self.max_length = common.max_length(options, self.model, self.tokenizer)
        # A fast tokenizer's padding/truncation state is shared: calls must not interleave.
        self._tokenizer_lock = threading.Lock()

    def _detect_pooling(self, hf_repo_id: str, options: common.HandlerOptions) -> str:
        try:
            folder = options.provider.locate(hf_repo_id)
            st = json.loads((folder / "1_Pooling" / "config.json").read_text())
            for key, how in _ST_KEYS.items():
                if st.get(key):
                    return how
        except (errors.RuntimeServingError, OSError, ValueError):
            pass
        model_type = str(getattr(self.model.config, "model_type", ""))
        return "last" if model_type in _DECODERS else "mean"

    def embed(self, texts: list[str], cancel_event: threading.Event | None = None) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._tokenizer_lock:
            batch = self.tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            ).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
            left = getattr(self.tokenizer, "padding_side", "right") == "left"
            vectors = pool(hidden, batch["attention_mask"], self.pooling, left)
            vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
        return vectors.cpu().numpy().astype(np.float32)

    def count_tokens(self, texts: list[str]) -> int:
        with self._tokenizer_lock:
            encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        return sum(len(ids) for ids in encoded)

    @property
    def vocab_size(self) -> int:
        """Token ids this model knows are ``0 .. vocab_size - 1``."""
        return len(self.tokenizer)

    def detokenize(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))
