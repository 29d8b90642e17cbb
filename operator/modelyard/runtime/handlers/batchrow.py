"""One row of the continuous batch (:mod:`batchgen`): a request's sequence, how its next token
is chosen, how its text streams, and how it ends.

The scheduler in :mod:`batchgen` owns the batch's tensors and decides who runs; everything here
touches one :class:`Sequence` at a time (its sampling parameters, ``torch.Generator``, stop
strings and incremental decoding), so it reads without the batch's padding arithmetic.

Logprobs, for a row that asks for them (and only then: a row without them costs one attribute
test a step), are the log-softmax of the model's logits at the step the token was chosen,
before temperature, ``top_p``, ``min_tokens`` or a grammar shape them: the model's own
distribution, as OpenAI reports it and as vLLM does by default (``raw_logprobs``). So a greedy
token is the first of its step's ``top_logprobs``. Every token but the end-of-sequence one has
an entry (a stop string's tokens too, though its text is cut). A streamed row that asked for
logprobs, or that is one of ``n`` choices, streams :class:`~modelyard.runtime.protocols.Piece`
values (its index, its text, the logprobs of the tokens that text completes) instead of text.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable

import torch

from modelyard.runtime import errors, protocols, sampling
from modelyard.runtime.handlers import streaming

Decode = Callable[[list[int]], str]


@dataclasses.dataclass(eq=False)
class Sequence:
    """One request's generation: its parameters, its progress, and how it reports."""

    prompt: list[int]
    sampling: sampling.SamplingParams
    cancel_event: threading.Event | None = None
    on_token: protocols.TokenCallback | None = None
    processor: Callable[[list[int], torch.Tensor], torch.Tensor] | None = None
    """Masks this sequence's scores given its tokens so far (structured outputs), or None."""
    index: int = 0
    """Which of its request's ``n`` choices this is."""
    token_text: Callable[[int], str] | None = None
    """One token's own text, for logprobs (needed when ``sampling.logprobs`` is set)."""
    adapter: str | None = None
    """The LoRA adapter (its :class:`~modelyard.runtime.handlers.peftlora.LoraSet` key) this
    sequence decodes with; None: the base model."""

    generated: list[int] = dataclasses.field(default_factory=list)
    hit_eos: bool = False
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: protocols.ChatGeneration | None = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.tracker = streaming.StopTracker(self.sampling.stop)
        self.generator: torch.Generator | None = None
        self.text = ""
        self.prefix_offset = 0
        self.read_offset = 0
        self.logprobs: list[protocols.TokenLogprob] | None = None if self.sampling.logprobs is None else []
        self.sent_logprobs = 0
        """How many of :attr:`logprobs` have been streamed."""
        self.pieces = self.logprobs is not None or self.sampling.n > 1
        """Stream :class:`~modelyard.runtime.protocols.Piece` values rather than text."""

    @property
    def cancelled(self) -> bool:
        return self.cancel_event is not None and self.cancel_event.is_set()

    @property
    def max_new_tokens(self) -> int:
        return self.sampling.max_tokens

    @property
    def final_length(self) -> int:
        """Tokens this sequence's KV cache may hold at most."""
        return len(self.prompt) + self.max_new_tokens


def choose(rows: list[Sequence], logits: torch.Tensor, eos: set[int], decode: Decode) -> list[bool]:
    """Each row's next token from its logits [rows, vocab]; which rows ended.

    Greedy rows without a grammar take the batch's argmax, computed once for all of them;
    those that may not end yet (``min_tokens``, ``ignore_eos``) take the argmax with the EOS
    columns masked, also once for the batch. Only sampled or grammar rows go one by one."""
    scores = logits.float()
    greedy = scores.argmax(dim=-1).tolist()
    early: list[int] | None = None
    done = []
    for i, seq in enumerate(rows):
        # the model's distribution, before a sampler or a grammar shapes the scores
        logp = None if seq.logprobs is None else torch.log_softmax(scores[i], dim=-1)
        if seq.sampling.temperature > 0 or seq.processor is not None:
            token = _pick(seq, scores[i : i + 1], eos)
        elif len(seq.generated) >= seq.sampling.min_tokens or not eos:
            token = greedy[i]
        else:
            if early is None:
                early = _argmax_without(scores, eos)
            token = early[i]
        if logp is not None and token not in eos:
            _note(seq, logp, token)
        done.append(_advance(seq, token, eos, decode))
    return done


def _note(seq: Sequence, logp: torch.Tensor, token: int) -> None:
    """Record ``token``'s logprob and its step's ``sampling.logprobs`` most likely tokens."""
    assert seq.logprobs is not None and seq.token_text is not None and seq.sampling.logprobs is not None
    text = seq.token_text
    top: tuple[tuple[str, float], ...] = ()
    if seq.sampling.logprobs:
        values, ids = torch.topk(logp, min(seq.sampling.logprobs, int(logp.shape[-1])))
        top = tuple((text(t), v) for t, v in zip(ids.tolist(), values.tolist(), strict=True))
    seq.logprobs.append(protocols.TokenLogprob(text(token), float(logp[token]), top))


def _send(seq: Sequence, delta: str) -> None:
    """Stream ``delta``: as text, or as a piece with the logprobs not streamed yet."""
    assert seq.on_token is not None
    if not seq.pieces:
        seq.on_token(delta)
        return
    logprobs = None
    if seq.logprobs is not None:
        logprobs = tuple(seq.logprobs[seq.sent_logprobs :])
        seq.sent_logprobs = len(seq.logprobs)
    seq.on_token(protocols.Piece(seq.index, delta, logprobs))


def _argmax_without(scores: torch.Tensor, eos: set[int]) -> list[int]:
    """Each row's argmax with the EOS columns out (a vocabulary is more than its EOS tokens)."""
    masked = scores.clone()
    masked[:, sorted(eos)] = float("-inf")
    return masked.argmax(dim=-1).tolist()


def finish(seq: Sequence, decode: Decode) -> None:
    """End ``seq``: flush its held-back text, set its result and wake its caller."""
    try:
        delta = seq.tracker.finish(decode(seq.generated))
        unsent = seq.logprobs is not None and seq.sent_logprobs < len(seq.logprobs)
        if (delta or unsent) and seq.on_token is not None:
            _send(seq, delta)
        count = len(seq.generated)
        reason: protocols.FinishReason
        if seq.cancelled:
            reason = "cancelled"
        elif seq.tracker.stopped or seq.hit_eos or count < seq.max_new_tokens:
            reason = "stop"
        else:
            reason = "length"
        seq.result = protocols.ChatGeneration(
            seq.tracker.text, len(seq.prompt), count, reason, seq.logprobs, seq.index
        )
    except Exception as exc:
        seq.error = exc
    seq.done.set()


def fail(seq: Sequence, exc: BaseException) -> None:
    seq.error = (
        exc
        if isinstance(exc, errors.RuntimeServingError)
        else errors.GenerationError(f"generation failed: {exc}")
    )
    seq.done.set()


def _pick(seq: Sequence, scores: torch.Tensor, eos: set[int]) -> int:
    if seq.processor is not None:
        scores = seq.processor(seq.generated, scores)
    if len(seq.generated) < seq.sampling.min_tokens:
        masked = scores.clone()
        masked[:, list(eos)] = float("-inf")
        if bool(torch.isfinite(masked).any()):  # a finished grammar allows only the end
            scores = masked
    return _sample(seq, scores[0])


def _advance(seq: Sequence, token: int, eos: set[int], decode: Decode) -> bool:
    """Take ``token``: stream the safe text, then say whether the sequence ended."""
    seq.generated.append(token)
    seq.hit_eos = token in eos
    if seq.on_token is not None or seq.tracker.stop:
        delta = seq.tracker.update(_text(seq, decode))
        if delta and seq.on_token is not None:
            _send(seq, delta)
    if seq.hit_eos or seq.tracker.stopped or seq.cancelled or len(seq.generated) >= seq.max_new_tokens:
        finish(seq, decode)
        return True
    return False


def _text(seq: Sequence, decode: Decode) -> str:
    """The text so far, decoded incrementally: only the tokens since the last complete
    character are decoded again (the whole is decoded once, at the end)."""
    ids = seq.generated
    before = decode(ids[seq.prefix_offset : seq.read_offset])
    now = decode(ids[seq.prefix_offset :])
    # an unfinished UTF-8 character spans at most 4 byte tokens; past that, the model made
    # bytes that are no character, and they are shown as such (so a stream never stalls)
    if len(now) > len(before) and (not now.endswith("\ufffd") or len(ids) - seq.read_offset > 4):
        seq.text += now[len(before) :]
        seq.prefix_offset, seq.read_offset = seq.read_offset, len(ids)
    return seq.text


def _sample(seq: Sequence, scores: torch.Tensor) -> int:
    p = seq.sampling
    if p.temperature <= 0:
        return int(torch.argmax(scores))
    if seq.generator is None:
        seq.generator = torch.Generator(device=scores.device)
        seq.generator.manual_seed(p.seed if p.seed is not None else random.randrange(2**63))
    probs = torch.softmax(scores / p.temperature, dim=-1)
    if p.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        drop = torch.cumsum(sorted_probs, dim=-1) - sorted_probs > p.top_p
        sorted_probs[drop] = 0.0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=seq.generator))
