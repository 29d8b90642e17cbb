"""The built-in reranker: a cross-encoder (``AutoModelForSequenceClassification``).

Each (query, document) pair is scored in one forward pass; one logit becomes a sigmoid
relevance in [0, 1], two logits the softmax of the second. ``score_pairs`` lets the server
coalesce pairs from concurrent requests into one batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch

from modelyard.runtime import protocols
from modelyard.runtime.handlers import common


class CrossEncoderReranker(common.Pretrained):
    capabilities = ["rerank"]
    thread_safe = True
    max_parallelism = 2

    def _load(self, hf_repo_id: str) -> None:
        options = self.options
        self.tokenizer, self.model = common.load_pretrained(
            options, hf_repo_id, self.device, "AutoModelForSequenceClassification"
        )
        self.max_length = common.max_length(options, self.model, self.tokenizer)
        self._tokenizer_lock = threading.Lock()  # shared padding/truncation state

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        with self._tokenizer_lock:
            batch = self.tokenizer(
                [q for q, _ in pairs],
                [d for _, d in pairs],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
        with torch.inference_mode():
            logits = self.model(**batch).logits.float()
        scores = torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)[:, -1]
        return [float(s) for s in scores.cpu()]

    def count_tokens(self, pairs: Sequence[tuple[str, str]]) -> int:
        with self._tokenizer_lock:
            encoded = self.tokenizer(
                [q for q, _ in pairs], [d for _, d in pairs], truncation=True, max_length=self.max_length
            )["input_ids"]
        return sum(len(ids) for ids in encoded)

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_k: int | None = None,
        cancel_event: threading.Event | None = None,
    ) -> list[protocols.RerankResult]:
        scores = self.score_pairs([(query, d) for d in documents])
        ranked = sorted(
            (protocols.RerankResult(i, s) for i, s in enumerate(scores)), key=lambda r: r.score, reverse=True
        )
        return ranked[:top_k] if top_k else ranked
