"""A custom handler written against the model-server document (loaded by class path in tests)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt


class EchoEmbedding:
    capabilities = ["text-embedding"]
    dim = 3

    def __init__(self, hf_repo_id: str, device: Any, cache_dir: str | None = None, **kwargs: Any) -> None:
        self.hf_repo_id = hf_repo_id
        self.kwargs = kwargs
        self.name = kwargs.get("name", hf_repo_id)

    def embed(self, texts: list[str], cancel_event: threading.Event | None = None) -> npt.NDArray[np.float32]:
        return np.tile(np.array([1.0, 0.0, 0.0], dtype=np.float32), (len(texts), 1))

    def count_tokens(self, texts: list[str]) -> int:
        return sum(len(t.split()) for t in texts)
