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


class SlowChat:
    """A chat handler that takes 0.2 s per token (a stream that is still running when the test
    stops the server)."""

    capabilities = ["chat"]

    def __init__(self, hf_repo_id: str, device: Any, cache_dir: str | None = None, **kwargs: Any) -> None:
        self.name = kwargs.get("name", hf_repo_id)

    def generate(
        self,
        messages: Any,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str] | None = None,
        cancel_event: threading.Event | None = None,
        on_token: Any = None,
    ) -> Any:
        from modelyard.runtime import protocols

        pieces = []
        for i in range(max_new_tokens):
            if cancel_event is not None and cancel_event.wait(0.2):
                return protocols.ChatGeneration("".join(pieces), 1, i, "cancelled")
            pieces.append(f"t{i} ")
            if on_token is not None:
                on_token(pieces[-1])
        return protocols.ChatGeneration("".join(pieces), 1, max_new_tokens, "length")

    def count_tokens(self, messages: Any, *, add_generation_prompt: bool = True) -> int:
        return 1


class SlowTextChat:
    """The built-in chat handler, sleeping ``SLOW_TOKEN_SECONDS`` after each token it streams:
    a real model whose stream is still running when a test kills its process."""

    def __new__(cls, hf_repo_id: str, device: Any, cache_dir: str | None = None, **kwargs: Any) -> Any:
        import functools
        import os
        import time

        from modelyard.runtime.handlers import chat

        handler = chat.TextChatModel(hf_repo_id, device, cache_dir, **kwargs)
        delay = float(os.environ.get("SLOW_TOKEN_SECONDS", "0.02"))
        generate = handler.generate

        @functools.wraps(generate)
        def slow(*args: Any, on_token: Any = None, **kw: Any) -> Any:
            def paced(text: str) -> None:
                on_token(text)
                time.sleep(delay)

            return generate(*args, on_token=paced if on_token is not None else None, **kw)

        handler.generate = slow  # type: ignore[method-assign]
        return handler
