"""Structured outputs for the built-in chat handler: JSON-constrained decoding.

``response_format`` json_object or json_schema turns on a logits processor that, at every
step, keeps only tokens whose text extends the output as a valid JSON object prefix
(:mod:`jsonprefix`), checking candidates in order of the model's preference. When the token
budget left is no more than the characters needed to close the document, it spells out the
shortest closing text; once the object is complete it allows only end-of-sequence. So every
generation that ends yields syntactically valid JSON.

Schema conformance is not enforced token by token: the server validates the result against
the json_schema and retries (validate-and-retry, see :mod:`modelyard.runtime.serving.chat`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import transformers

from modelyard.runtime.handlers import jsonprefix

_CANDIDATES = 256
_KEEP = 32


@dataclasses.dataclass
class JsonVocabulary:
    """Each token's text (special tokens: empty) and the end-of-sequence ids."""

    pieces: list[str]
    eos_ids: set[int]
    single: dict[str, int]

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> JsonVocabulary:
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        pieces = [
            "" if i in special else str(tokenizer.decode([i], skip_special_tokens=True))
            for i in range(len(tokenizer))
        ]
        eos = tokenizer.eos_token_id
        eos_ids = {int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None}
        single: dict[str, int] = {}
        for i, piece in enumerate(pieces):
            if len(piece) == 1:
                single.setdefault(piece, i)
        return cls(pieces, eos_ids, single)


class JsonLogitsProcessor(transformers.LogitsProcessor):
    def __init__(self, vocab: JsonVocabulary, prompt_len: int, max_new_tokens: int) -> None:
        self.vocab = vocab
        self.prompt_len = prompt_len
        self.max_new_tokens = max_new_tokens
        self.state = jsonprefix.JsonPrefix()
        self.fed = 0
        self.broken = False

    def _advance(self, generated: list[int]) -> None:
        for token in generated[self.fed :]:
            if not self.state.feed_text(self.vocab.pieces[token]):
                self.broken = True
        self.fed = len(generated)

    def _allowed(self, scores: torch.Tensor) -> list[int]:
        if self.broken or self.state.done:
            return sorted(self.vocab.eos_ids)
        remaining = self.max_new_tokens - self.fed
        closing = self.state.completion()
        if remaining <= len(closing) + 1:
            forced = self.vocab.single.get(closing[0])
            if forced is not None:
                return [forced]
        allowed: list[int] = []
        order = torch.argsort(scores, descending=True).tolist()
        for checked, token in enumerate(order):
            piece = self.vocab.pieces[token]
            if (
                piece
                and "\ufffd" not in piece
                and token not in self.vocab.eos_ids
                and self.state.copy().feed_text(piece)
            ):
                allowed.append(token)
                if len(allowed) >= _KEEP:
                    break
            if checked >= _CANDIDATES and allowed:
                break
        if not allowed:
            forced = self.vocab.single.get(closing[0])
            allowed = [forced] if forced is not None else sorted(self.vocab.eos_ids)
        return allowed

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._advance([int(t) for t in input_ids[0, self.prompt_len :]])
        allowed = self._allowed(scores[0])
        if not allowed:
            return scores
        mask = torch.full_like(scores, float("-inf"))
        index = torch.tensor(allowed, device=scores.device)
        mask[:, index] = 0.0
        return scores + mask
