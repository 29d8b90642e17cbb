"""The prefix cache keeps each adapter's prefixes apart: a prompt cached under one adapter (or
the base) is never found under another, since its keys and values came from other weights."""

from __future__ import annotations

import torch

from modelyard.runtime.handlers import prefixcache


def _kv(tokens: int, value: float) -> prefixcache.KV:
    return [(torch.full((1, 2, tokens, 4), value), torch.full((1, 2, tokens, 4), value))]


def test_a_prefix_is_found_only_in_the_space_it_was_cached_in() -> None:
    cache = prefixcache.PrefixCache(1 << 20, block=4)
    prompt = list(range(13))
    cache.insert(prompt, _kv(13, 1.0), "adapter_1")
    assert cache.lookup(prompt) == (0, None)
    assert cache.lookup(prompt, "adapter_2") == (0, None)
    reused, kv = cache.lookup(prompt, "adapter_1")
    assert reused == 12 and kv is not None and bool((kv[0][0] == 1.0).all())
    cache.insert(prompt, _kv(13, 0.0))
    reused, kv = cache.lookup(prompt)
    assert reused == 12 and kv is not None and bool((kv[0][0] == 0.0).all())
    reused, kv = cache.lookup(prompt, "adapter_1")
    assert kv is not None and bool((kv[0][0] == 1.0).all())
