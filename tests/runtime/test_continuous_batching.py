"""Continuous batching: a request decodes the same tokens alone and inside a batch of mixed
requests, and the running batch's KV cache stays within its byte budget under a burst.

The references are the model's own unbatched ``generate`` (greedy) and the same request run
alone through the engine (sampled, same seed). A wrapped ``forward`` records how many rows each
decode step had, so the tests know the requests really shared steps.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import pytest
import torch

from modelyard.runtime import errors, sampling
from modelyard.runtime.handlers import batchgen

MESSAGES = [
    [{"role": "user", "content": "hi"}],
    [{"role": "user", "content": "tell me a story about a cat on a mat " * 3}],
    [{"role": "system", "content": "you serve models"}, {"role": "user", "content": "kubernetes pods?"}],
    [{"role": "user", "content": "the quick brown fox jumps over the lazy dog " * 5}],
]


SLOW = 0.002  # seconds a forward pass: slower than thread start-up, so a burst really overlaps


def _reference(handler: Any, messages: Any, max_new_tokens: int) -> str:
    """Greedy text from transformers' own unbatched ``generate``."""
    ids = handler._encode(handler._chat_text(messages), special=False)
    with torch.inference_mode():
        out = handler.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=handler.tokenizer.pad_token_id,
        )
    return str(handler._decode(out[0, ids.shape[1] :]))


def _greedy(max_new_tokens: int, stop: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    params = sampling.SamplingParams(max_tokens=max_new_tokens, min_tokens=max_new_tokens, stop=stop)
    return {"sampling_params": params, **extra}


SAMPLED = sampling.SamplingParams(max_tokens=30, temperature=0.9, top_p=0.9, seed=7)


def test_a_request_decodes_the_same_tokens_alone_and_in_a_mixed_batch(slow_llama: Any) -> None:
    handler = slow_llama(SLOW, prefix_cache_bytes=0)
    lengths = [40, 17, 29, 5]
    references = [_reference(handler, m, n) for m, n in zip(MESSAGES, lengths, strict=True)]
    assert [
        handler.generate(m, **_greedy(n)).text for m, n in zip(MESSAGES, lengths, strict=True)
    ] == references

    # a stop string taken from inside one reference answer ends that answer just before it
    stop = references[0][12:15]
    stopped_text = references[0][: references[0].find(stop)]
    sampled_alone = handler.generate(MESSAGES[1], sampling_params=SAMPLED)

    cancel = threading.Event()
    cancelled_tokens: list[str] = []

    def on_token(text: str) -> None:
        cancelled_tokens.append(text)
        if len(cancelled_tokens) == 3:
            cancel.set()

    calls: list[tuple[Any, dict[str, Any]]] = [
        *[(m, _greedy(n)) for m, n in zip(MESSAGES, lengths, strict=True)],
        (MESSAGES[0], _greedy(40, stop=(stop,))),
        (MESSAGES[1], {"sampling_params": SAMPLED}),
        (MESSAGES[3], _greedy(3000, cancel_event=cancel, on_token=on_token)),
        *[(m, _greedy(n)) for m, n in zip(MESSAGES, lengths, strict=True)],
    ]
    handler.rows.clear()
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(handler.generate, m, **kw) for m, kw in calls]
        results = [f.result(timeout=120) for f in futures]

    assert max(handler.rows) >= 3, f"the requests never shared a decode step: {handler.rows}"
    assert [r.text for r in results[:4]] == references
    assert [r.text for r in results[7:]] == references
    assert results[4].text == stopped_text and results[4].finish_reason == "stop"
    assert results[5].text == sampled_alone.text
    assert results[6].finish_reason == "cancelled"
    assert results[6].completion_tokens < 100
    assert [r.completion_tokens for r in results[:4]] == lengths
    deadline = time.monotonic() + 10  # the last row leaves the batch just after its caller returns
    while handler.engine.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert handler.engine.running == 0 and handler.engine.kv_bytes == 0


def test_the_kv_cache_stays_within_its_budget_under_a_burst(slow_llama: Any) -> None:
    probe = slow_llama(SLOW, prefix_cache_bytes=0)
    per_token = probe.engine.bytes_per_token
    prompt = len(probe._encode(probe._chat_text(MESSAGES[1]), special=False)[0])
    budget = 3 * (prompt + 24) * per_token  # room for three of the requests below at once
    handler = slow_llama(SLOW, prefix_cache_bytes=0, kv_cache_bytes=budget)
    reference = _reference(handler, MESSAGES[1], 24)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(handler.generate, MESSAGES[1], **_greedy(24)) for _ in range(12)]
        texts = [f.result(timeout=120).text for f in futures]

    assert texts == [reference] * 12
    assert 0 < handler.engine.peak_kv_bytes <= budget
    assert 2 <= max(handler.rows) <= 3, f"three requests fit the budget, no more: {handler.rows}"

    # a request that could never fit is refused at once, naming the field
    with pytest.raises(errors.BadRequestError) as refused:
        handler.generate(MESSAGES[1], sampling_params=sampling.SamplingParams(max_tokens=1000))
    assert refused.value.param == "max_tokens"
    assert "--kv-cache-bytes" in refused.value.message


def test_a_cached_prefix_gives_the_same_tokens_as_computing_it(slow_llama: Any) -> None:
    system = {"role": "system", "content": "you are a helpful assistant for kubernetes and cats " * 6}
    asks = [[system, {"role": "user", "content": q}] for q in ("hi", "how are pods scheduled?", "a hat")]
    uncached = slow_llama(SLOW, prefix_cache_bytes=0)
    cached = slow_llama(SLOW)
    expected = [uncached.generate(m, **_greedy(30)).text for m in asks]

    first = cached.generate(asks[0], **_greedy(30)).text
    stats = cached.engine.cache.stats
    assert (stats.hits, stats.misses) == (0, 1)
    again = [cached.generate(m, **_greedy(30)).text for m in asks]

    assert [first, *again] == [expected[0], *expected]
    assert stats.hits == 3, "the shared system prompt should have been reused by every later request"
    prompt_len = len(cached._encode(cached._chat_text(asks[1]), special=False)[0])
    assert stats.hit_tokens >= 3 * (prompt_len // 2)
    assert 0 < stats.bytes <= cached.engine.cache.max_bytes
    assert expected == [_reference(uncached, m, 30) for m in asks]


def test_the_prefix_cache_evicts_least_recently_used_blocks_within_its_bytes(
    slow_llama: Any,
) -> None:
    probe = slow_llama(SLOW, prefix_cache_bytes=0)
    block_bytes = probe.engine.bytes_per_token * 16
    handler = slow_llama(SLOW, prefix_cache_bytes=4 * block_bytes)
    for i in range(6):
        long = [{"role": "user", "content": f"{i} the quick brown fox jumps over the lazy dog " * 4}]
        handler.generate(long, **_greedy(2))
        assert handler.engine.cache.stats.bytes <= 4 * block_bytes
    assert handler.engine.cache.stats.blocks == 4


def test_peak_tokens_counts_the_padded_batch_at_its_widest() -> None:
    # one row of 10 growing to 12 next to one of 2 growing to 20: widest when only the
    # second is left (1 x 20), or at step 2 (2 rows x 12 wide = 24)
    assert batchgen.peak_tokens([(10, 12), (2, 20)]) == 24
    assert batchgen.peak_tokens([(5, 5)]) == 5
    assert batchgen.peak_tokens([(1, 100), (1, 100), (1, 100)]) == 300


def test_a_request_cancelled_while_waiting_leaves_the_queue_at_once(slow_llama: Any) -> None:
    handler = slow_llama(SLOW, prefix_cache_bytes=0, max_num_seqs=1)
    cancel = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        running = pool.submit(handler.generate, MESSAGES[0], **_greedy(400))
        while handler.engine.running == 0:
            time.sleep(0.005)
        queued = pool.submit(handler.generate, MESSAGES[1], **_greedy(5))
        left = pool.submit(handler.generate, MESSAGES[2], **_greedy(5, cancel_event=cancel))
        while handler.engine.waiting < 2:
            time.sleep(0.005)
        cancel.set()  # its client went away; it is behind another waiting request
        assert left.result(timeout=60).finish_reason == "cancelled"
        assert not running.done(), "the cancelled request waited for the running one to finish"
        assert running.result(timeout=120).completion_tokens == 400
        assert queued.result(timeout=60).completion_tokens == 5
