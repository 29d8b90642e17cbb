"""The per-token path of streamed generation: cheaper, and still exactly what it replaced.

Every decode step hands each running sequence one token: its choice (:func:`batchrow.choose`),
its text (:func:`common.text_decoder`) and the hand-over to the event loop
(:class:`tokenpipe.TokenPipe`). Each shortcut here is checked against the slow way it replaces.
"""

from __future__ import annotations

import asyncio
import pathlib
import random
import threading
from typing import Any

import torch
import transformers

from modelyard.runtime import sampling
from modelyard.runtime.handlers import batchrow, common
from modelyard.runtime.serving import tokenpipe

EOS = {2, 5}


def _row(min_tokens: int, temperature: float = 0.0) -> batchrow.Sequence:
    params = sampling.SamplingParams(max_tokens=100, min_tokens=min_tokens, temperature=temperature, seed=3)
    return batchrow.Sequence(prompt=[1, 2, 3], sampling=params)


def test_greedy_rows_that_may_not_end_take_the_best_token_other_than_eos() -> None:
    logits = torch.randn(6, 40)
    logits[:, 5] = 100.0  # EOS is every row's first choice
    logits[:, 2] = 90.0  # and its second
    rows = [_row(0), _row(10), _row(0), _row(10), _row(10, temperature=0.7), _row(1)]
    rows[5].generated = [7]  # min_tokens reached
    done = batchrow.choose(rows, logits, EOS, lambda ids: "")
    chosen = [seq.generated[-1] for seq in rows]
    best_other = logits[:, [i for i in range(40) if i not in EOS]].argmax(dim=-1)
    others = [i for i in range(40) if i not in EOS]
    assert chosen[0] == 5 and chosen[2] == 5 and chosen[5] == 5  # free to end: they end
    assert done[0] and done[2] and done[5]
    for i in (1, 3, 4):  # held by min_tokens, greedy or sampled: never EOS
        assert chosen[i] not in EOS and not done[i]
    assert chosen[1] == others[int(best_other[1])] and chosen[3] == others[int(best_other[3])]


def test_the_batched_choice_equals_choosing_row_by_row() -> None:
    torch.manual_seed(0)
    for _ in range(20):
        logits = torch.randn(5, 30)
        rows = [_row(random.choice([0, 50])) for _ in range(5)]
        alone = [_row(seq.sampling.min_tokens) for seq in rows]
        batchrow.choose(rows, logits, EOS, lambda ids: "")
        for i, seq in enumerate(alone):
            batchrow.choose([seq], logits[i : i + 1], EOS, lambda ids: "")
        assert [s.generated for s in rows] == [s.generated for s in alone]


def test_the_fast_decoder_gives_the_tokenizers_own_text(
    models_dir: pathlib.Path, minilm_dir: pathlib.Path
) -> None:
    rng = random.Random(1)
    for path in (models_dir / "llama", minilm_dir):
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
        decode = common.text_decoder(tokenizer)
        special = list(tokenizer.all_special_ids)
        texts = ["hello world, it's a test: ünïcödé 🐈 — ok?", "  spaces   and\nnew lines\t"]
        cases = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        vocab = tokenizer.vocab_size
        cases += [[rng.randrange(vocab) for _ in range(rng.randint(0, 12))] for _ in range(200)]
        cases += [[*special, *c] for c in cases[:20]]
        for ids in cases:
            assert decode(ids) == tokenizer.decode(ids, skip_special_tokens=True), ids
            assert decode(torch.tensor(ids, dtype=torch.long)) == decode(ids)


def test_the_token_pipe_keeps_each_streams_order_and_wakes_the_loop_once_per_burst() -> None:
    async def main() -> tuple[list[list[str | None]], int]:
        loop = asyncio.get_running_loop()
        wakeups = 0
        real = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any) -> Any:
            nonlocal wakeups
            wakeups += 1
            return real(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        pipe = tokenpipe.TokenPipe(loop)
        queues: list[asyncio.Queue[str | None]] = [asyncio.Queue() for _ in range(4)]
        senders = [pipe.sender(q) for q in queues]
        released = threading.Event()

        def engine() -> None:
            for step in range(50):  # a decode step streams a token to every row
                for i, send in enumerate(senders):
                    send(f"{i}:{step}")
                if step == 0:
                    released.wait()  # the loop is busy meanwhile: the rest is one burst

        thread = threading.Thread(target=engine)
        thread.start()
        await asyncio.sleep(0)
        released.set()
        thread.join()  # blocks the loop: nothing is delivered until the end
        for q in queues:
            real(q.put_nowait, None)  # the end marker, as a finished future's callback
        got: list[list[str | None]] = []
        for q in queues:
            items: list[str | None] = []
            while not items or items[-1] is not None:
                items.append(await q.get())
            got.append(items)
        return got, wakeups

    got, wakeups = asyncio.run(main())
    for i, items in enumerate(got):
        assert items == [*(f"{i}:{step}" for step in range(50)), None]
    assert wakeups < 50 * 4 / 10  # 200 texts: the loop woke a handful of times, not per text
