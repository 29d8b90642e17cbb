"""The KV state of recent prompt prefixes, reused instead of recomputed (bounded by bytes, LRU).

A prompt is cut into blocks of ``block`` tokens. Block *i* is keyed by a SHA-256 chained over
every token before and in it, so a key names one exact prefix, and two prompts that share a
long system prompt share its blocks. A lookup walks the prompt's blocks from the start while
they are cached and returns their keys and values joined; the caller computes only the rest.
At least one prompt token is always left uncached: its logits give the first new token.

Eviction is least-recently-used by bytes. A hit touches its blocks last-to-first, so the first
block of a prefix is the most recent: a prefix is evicted from its tail, and a cached block
never outlives the blocks before it for long (an orphan can no longer match and ages out).

Keys are per *space*: a LoRA adapter's prompts chain from a seed of its own (the base's from
none), so a prefix computed with one adapter never serves another adapter or the base: its keys
and values differ from theirs.

Keys and values are stored as they came out of the model (position-encoded at their absolute
positions 0..n-1), which is exactly where a prompt with the same prefix needs them.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
from typing import Any

import torch

KV = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, (keys, values) shaped [batch, kv_heads, tokens, head_dim]."""


@dataclasses.dataclass
class _Block:
    kv: KV
    nbytes: int


@dataclasses.dataclass
class CacheStats:
    hits: int = 0
    """Lookups that reused at least one block."""
    misses: int = 0
    hit_tokens: int = 0
    query_tokens: int = 0
    bytes: int = 0
    blocks: int = 0


def nbytes(kv: KV) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)


def layers(cache: Any) -> KV:
    """The KV of a transformers ``DynamicCache``, per layer."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def bytes_per_token(model: Any) -> int:
    """KV bytes one token takes in every layer (keys and values)."""
    config = model.config
    config = getattr(config, "text_config", None) or config
    heads = getattr(config, "num_attention_heads", 1)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    n_layers = config.num_hidden_layers
    element = next(model.parameters()).element_size()
    return int(2 * n_layers * kv_heads * head_dim * element)


class PrefixCache:
    def __init__(self, max_bytes: int, block: int = 16) -> None:
        if block < 1:
            raise ValueError("block must be at least 1 token")
        self.max_bytes = max(0, max_bytes)
        self.block = block
        self._blocks: collections.OrderedDict[bytes, _Block] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def _keys(self, ids: list[int], blocks: int, space: str) -> list[bytes]:
        keys: list[bytes] = []
        digest = hashlib.sha256(b"space|" + space.encode()).digest() if space else b""
        for i in range(blocks):
            chunk = ids[i * self.block : (i + 1) * self.block]
            digest = hashlib.sha256(digest + b"|" + ",".join(map(str, chunk)).encode()).digest()
            keys.append(digest)
        return keys

    def lookup(self, ids: list[int], space: str = "") -> tuple[int, KV | None]:
        """(tokens reused, their KV joined) for the longest cached prefix of ``ids`` that leaves
        at least one token to compute; (0, None) on a miss. ``space``: the adapter's, "" the base's."""
        if not self.enabled:
            return 0, None
        usable = (len(ids) - 1) // self.block
        with self._lock:
            found: list[tuple[bytes, _Block]] = []
            for key in self._keys(ids, usable, space):
                entry = self._blocks.get(key)
                if entry is None:
                    break
                found.append((key, entry))
            for key, _ in reversed(found):
                self._blocks.move_to_end(key)
            self.stats.query_tokens += len(ids)
            if not found:
                self.stats.misses += 1
                return 0, None
            self.stats.hits += 1
            self.stats.hit_tokens += len(found) * self.block
        layers = len(found[0][1].kv)
        joined = [
            (
                torch.cat([b.kv[i][0] for _, b in found], dim=2),
                torch.cat([b.kv[i][1] for _, b in found], dim=2),
            )
            for i in range(layers)
        ]
        return len(found) * self.block, joined

    def insert(self, ids: list[int], kv: KV, space: str = "") -> None:
        """Cache the whole blocks of a prompt whose KV (batch 1, covering ``ids``) was computed."""
        if not self.enabled:
            return
        blocks = min(len(ids), int(kv[0][0].shape[2])) // self.block
        keys = self._keys(ids, blocks, space)
        with self._lock:
            for i, key in enumerate(keys):
                if key in self._blocks:
                    continue
                start, end = i * self.block, (i + 1) * self.block
                part = [(k[:, :, start:end].clone(), v[:, :, start:end].clone()) for k, v in kv]
                size = nbytes(part)
                if size > self.max_bytes:
                    return
                self._blocks[key] = _Block(part, size)
                self.stats.bytes += size
            for key in reversed(keys):
                if key in self._blocks:
                    self._blocks.move_to_end(key)
            while self.stats.bytes > self.max_bytes and self._blocks:
                _, evicted = self._blocks.popitem(last=False)
                self.stats.bytes -= evicted.nbytes
            self.stats.blocks = len(self._blocks)
