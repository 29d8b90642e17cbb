"""Continuous batching for causal LMs: one scheduler thread decodes every running sequence at once.

Requests (:class:`batchrow.Sequence`) are submitted from the server's worker threads, which then block
until their sequence ends. The scheduler thread loops:

1. **Admit** waiting sequences in arrival order while the batch has room (``max_seqs``) and
   the KV budget holds the new batch's worst case (below). Those whose prompt starts with a
   cached prefix are prefilled one by one from the prefix cache's blocks; the others together
   in one left-padded pass. Each one's first token comes from its prefill's logits. Sequences
   with the same prompt (a request's ``n`` choices) are prefilled once; their rows copy it.
2. **Join** it to the running batch: the batch's KV cache is left-padded, so rows of different
   lengths line up at the right; a 2-D attention mask hides the padding and each row's
   ``position_ids`` count only its real tokens, so every row computes what it would alone.
3. **Decode** one token for every row in one forward pass; each row then picks its token with
   its own sampling parameters and ``torch.Generator``, streams the safe text, and checks its
   stop strings, EOS, token budget and cancellation. Finished rows leave the batch, and the
   padding every remaining row shares on the left is cut off.

The KV budget bounds the batch's cache tensors (``B x padded length x bytes per token``). A
sequence is admitted only when the batch's peak size, assuming no row stops early, fits:
each row grows one token a step until ``prompt + max_tokens``; the padded length is the
longest live row. So the cache never outgrows the budget, whatever the requests do later.

transformers ships ``ContinuousBatchingManager`` (``generate_batch``); on CPU with the tiny
Llama it gave the same greedy tokens but ran 60 tokens/s for 16 sequences where sequential
``generate`` ran 837, and its sampling settings are per manager, not per request — hence this.
One row's token choice, streaming and ending live in :mod:`batchrow`.

LoRA adapters (:mod:`peftlora`): each row names its adapter (or none), every forward pass
applies each row's own, so rows of different adapters share the batch; the prefix cache is
looked up in the row's adapter's space. The scheduler holds the adapter set's lock for each
admit-and-step, so adapters load and unload between steps, never during one.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

import torch
import transformers

from modelyard.runtime import errors, protocols
from modelyard.runtime.handlers import batchrow, peftlora, prefixcache

log = logging.getLogger(__name__)

KV = prefixcache.KV


def peak_tokens(rows: list[tuple[int, int]]) -> int:
    """The most (rows x padded length) a left-padded batch reaches, for rows given as (current
    length, final length), if every row grows one token a step until its final length."""
    worst = 0
    remaining = sorted({f - c for c, f in rows})
    for t in [0, *remaining]:
        live = [(c, f) for c, f in rows if f - c >= t]
        if live:
            worst = max(worst, len(live) * max(c + t for c, _ in live))
    return worst


@dataclasses.dataclass
class EngineLimits:
    max_seqs: int = 32
    kv_cache_bytes: int = 2 * 1024**3


class Engine:
    """The scheduler thread and the running batch of one model."""

    def __init__(
        self,
        model: Any,
        decode: Callable[[list[int]], str],
        eos: set[int],
        limits: EngineLimits,
        cache: prefixcache.PrefixCache,
        device: str,
        adapters: peftlora.LoraSet | None = None,
    ) -> None:
        self.model = model
        self.adapters = adapters or peftlora.LoraSet(model, "model")
        self.decode = decode
        self.eos = eos
        self.limits = limits
        self.cache = cache
        self.device = device
        self.bytes_per_token = prefixcache.bytes_per_token(model)
        self._cond = threading.Condition()
        self._waiting: collections.deque[batchrow.Sequence] = collections.deque()
        self._thread: threading.Thread | None = None
        # the batch: rows, per-layer KV [B, H, L, D], mask [B, L]; only the scheduler touches it
        self._rows: list[batchrow.Sequence] = []
        self._kv: KV = []
        self._mask = torch.zeros((0, 0), dtype=torch.long)
        self.kv_bytes = 0
        self.kv_reserved_tokens = 0
        self.peak_kv_bytes = 0
        """The largest the batch's KV tensors have been (tests check it against the budget)."""

    # -- the server's side ------------------------------------------------------------------

    @property
    def running(self) -> int:
        return len(self._rows)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def check(self, prompt_len: int, max_new_tokens: int) -> None:
        """A request that could never fit the KV budget is refused at once."""
        need = (prompt_len + max_new_tokens) * self.bytes_per_token
        if need > self.limits.kv_cache_bytes:
            raise errors.BadRequestError(
                f"the prompt ({prompt_len} tokens) plus max_tokens ({max_new_tokens}) needs {need} bytes "
                f"of KV cache; this server's budget is {self.limits.kv_cache_bytes} (--kv-cache-bytes)",
                param="max_tokens",
            )

    def adapter_use(self) -> tuple[list[str], list[str]]:
        """The adapter keys of the running rows and of the waiting sequences (each once)."""
        rows, waiting = list(self._rows), list(self._waiting)
        running = sorted({s.adapter for s in rows if s.adapter})
        return running, sorted({s.adapter for s in waiting if s.adapter})

    def run(self, seq: batchrow.Sequence) -> protocols.ChatGeneration:
        """Generate ``seq`` in the running batch; blocks the calling thread until it ends."""
        return self.run_many([seq])[0]

    def run_many(self, seqs: list[batchrow.Sequence]) -> list[protocols.ChatGeneration]:
        """Generate ``seqs`` (queued together, in order: a request's ``n`` choices, which share
        its adapter) in the running batch; blocks the calling thread until all of them end. A
        live adapter is held while they run, so an unload waits for them."""
        for seq in seqs:
            self.check(len(seq.prompt), seq.max_new_tokens)
        adapter = seqs[0].adapter
        if adapter is not None and not self.adapters.acquire(adapter):
            raise errors.ModelNotFoundError("the adapter was unloaded", param="model", code="model_not_found")
        try:
            with self._cond:
                self._waiting.extend(seqs)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="modelyard-decode", daemon=True)
                    self._thread.start()
                self._cond.notify()
            for seq in seqs:
                seq.done.wait()
        finally:
            if adapter is not None:
                self.adapters.release(adapter)
        for seq in seqs:
            if seq.error is not None:
                raise seq.error
        return [seq.result for seq in seqs if seq.result is not None]

    # -- the scheduler thread ---------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._rows:
                    self._cond.wait()
            try:
                with self.adapters.lock, torch.inference_mode():
                    self._admit()
                    if self._rows:
                        self._step()
            except Exception as exc:  # a failed forward pass fails the batch, not the server
                log.exception("decode step failed")
                for seq in self._rows:
                    batchrow.fail(seq, exc)
                self._set_batch([], [], torch.zeros((0, 0), dtype=torch.long))

    def _admissible(self) -> list[batchrow.Sequence]:
        """The waiting sequences that join now: in arrival order, while the batch has room and
        the KV budget holds the grown batch's worst case."""
        taken: list[batchrow.Sequence] = []
        with self._cond:
            if any(seq.cancelled for seq in self._waiting):  # a client left while waiting
                for seq in [s for s in self._waiting if s.cancelled]:
                    self._waiting.remove(seq)
                    batchrow.finish(seq, self.decode)
            rows = [(len(r.prompt) + len(r.generated), r.final_length) for r in self._rows]
            while self._waiting and len(self._rows) + len(taken) < self.limits.max_seqs:
                seq = self._waiting[0]
                grown = [*rows, (len(seq.prompt), seq.final_length)]
                if rows and peak_tokens(grown) * self.bytes_per_token > self.limits.kv_cache_bytes:
                    break  # wait for rows to finish; arrival order is kept
                rows = grown
                taken.append(self._waiting.popleft())
            if taken:
                self.kv_reserved_tokens = peak_tokens(rows)
        return taken

    def _admit(self) -> None:
        """Prefill the admissible sequences (those without a cached prefix together, in one
        left-padded pass), choose their first tokens and join the ones that go on."""
        seqs = self._admissible()
        if not seqs:
            return
        same: dict[tuple[str, tuple[int, ...]], list[batchrow.Sequence]] = {}
        for seq in seqs:  # the n choices of a request share their prompt: one prefill
            same.setdefault((seq.adapter or "", tuple(seq.prompt)), []).append(seq)
        looked = [
            (members, *self.cache.lookup(members[0].prompt, members[0].adapter or ""))
            for members in same.values()
        ]
        groups: list[list[tuple[list[batchrow.Sequence], KV | None]]] = [
            [(members, past)] for members, reused, past in looked if reused
        ]
        fresh: list[tuple[list[batchrow.Sequence], KV | None]] = [
            (members, None) for members, reused, _ in looked if not reused
        ]
        if fresh:
            groups.append(fresh)
        for group in groups:
            try:
                kv, mask, logits = self._prefill([(members[0], past) for members, past in group])
            except Exception as exc:
                for members, _ in group:
                    for seq in members:
                        batchrow.fail(seq, exc)
                continue
            rows = [seq for members, _ in group for seq in members]
            if len(rows) > len(group):  # copy each prefilled row for its siblings
                copies = [i for i, (members, _) in enumerate(group) for _ in members]
                at = torch.tensor(copies, dtype=torch.long, device=self.device)
                kv, mask, logits = [(k[at], v[at]) for k, v in kv], mask[at], logits[at]
            keep = [
                i for i, done in enumerate(batchrow.choose(rows, logits, self.eos, self.decode)) if not done
            ]
            if keep:
                index = torch.tensor(keep, dtype=torch.long, device=self.device)
                self._join([rows[i] for i in keep], [(k[index], v[index]) for k, v in kv], mask[index])

    def _prefill(
        self, group: list[tuple[batchrow.Sequence, KV | None]]
    ) -> tuple[KV, torch.Tensor, torch.Tensor]:
        """KV, mask and last logits of a group's prompts: one sequence with its cached prefix,
        or several without, left-padded to the longest."""
        width = max(len(seq.prompt) for seq, _ in group)
        ids = torch.zeros((len(group), width), dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for i, (seq, _) in enumerate(group):
            ids[i, width - len(seq.prompt) :] = torch.tensor(seq.prompt)
            mask[i, width - len(seq.prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        past = group[0][1]
        reused = 0 if past is None else int(past[0][0].shape[2])
        cache = transformers.DynamicCache(past) if past is not None else transformers.DynamicCache()
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        out = self.adapters.forward(
            [seq.adapter for seq, _ in group],
            input_ids=ids[:, reused:],
            attention_mask=mask,
            position_ids=positions[:, reused:],
            cache=cache,
            use_cache=True,
        )
        kv = prefixcache.layers(cache)
        for i, (seq, _) in enumerate(group):
            pad = width - len(seq.prompt)
            if pad:  # padding's keys and values are never attended to; keep them finite
                for k, v in kv:
                    k[i, :, :pad] = 0
                    v[i, :, :pad] = 0
            space = seq.adapter or ""
            self.cache.insert(
                seq.prompt, [(k[i : i + 1, :, pad:], v[i : i + 1, :, pad:]) for k, v in kv], space
            )
        return kv, mask, out.logits[:, -1, :]

    def _join(self, seqs: list[batchrow.Sequence], kv: KV, new_mask: torch.Tensor) -> None:
        if not self._rows:
            self._set_batch(seqs, kv, new_mask)
            return
        width = max(self._mask.shape[1], new_mask.shape[1])
        old = [(_pad(k, width), _pad(v, width)) for k, v in self._kv]
        new = [(_pad(k, width), _pad(v, width)) for k, v in kv]
        joined = [
            (torch.cat([ok, nk]), torch.cat([ov, nv])) for (ok, ov), (nk, nv) in zip(old, new, strict=True)
        ]
        mask = torch.cat([_pad(self._mask, width), _pad(new_mask, width)])
        self._set_batch([*self._rows, *seqs], joined, mask)

    def _step(self) -> None:
        rows, mask = self._rows, self._mask
        ids = torch.tensor([[seq.generated[-1]] for seq in rows], device=self.device)
        positions = mask.sum(dim=1, keepdim=True)
        mask = torch.cat([mask, torch.ones((len(rows), 1), dtype=torch.long, device=self.device)], dim=1)
        cache = transformers.DynamicCache(self._kv)
        out = self.adapters.forward(
            [seq.adapter for seq in rows],
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
        )
        kv = prefixcache.layers(cache)
        keep = [
            i
            for i, done in enumerate(batchrow.choose(rows, out.logits[:, -1, :], self.eos, self.decode))
            if not done
        ]
        if len(keep) == len(rows):
            self._rows, self._kv, self._mask = rows, kv, mask
            self.kv_bytes = prefixcache.nbytes(kv)
            self.peak_kv_bytes = max(self.peak_kv_bytes, self.kv_bytes)
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        mask = mask[index]
        lead = int(mask.shape[1] - mask.sum(dim=1).max()) if keep else 0
        kv = [(k[index, :, lead:], v[index, :, lead:]) for k, v in kv]
        self._set_batch([rows[i] for i in keep], kv, mask[:, lead:])

    def _set_batch(self, rows: list[batchrow.Sequence], kv: KV, mask: torch.Tensor) -> None:
        """A new batch composition; its worst case is what the budget now holds reserved."""
        self._rows, self._kv, self._mask = rows, kv, mask
        self.kv_bytes = prefixcache.nbytes(kv) if rows else 0
        self.peak_kv_bytes = max(self.peak_kv_bytes, self.kv_bytes)
        self.kv_reserved_tokens = peak_tokens(
            [(len(r.prompt) + len(r.generated), r.final_length) for r in rows]
        )
        if not rows:
            self._kv = []


def _pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """Left-pad ``t``'s token dimension (dim 2 of KV, dim 1 of a mask) with zeros to ``width``."""
    dim = 2 if t.dim() == 4 else 1
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([torch.zeros(shape, dtype=t.dtype, device=t.device), t], dim=dim)
