"""Streamed text from generation threads to the event loop, one wake-up per burst."""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable

from modelyard.runtime import protocols

Item = str | protocols.Piece


class TokenPipe:
    """Carries streamed text from generation threads to the event loop's queues.

    One wake-up of the loop per burst, not per token: a decode step of a batch streams a
    token to every running sequence, and waking the loop for each (a write to its self-pipe,
    a callback) is a cost per token per stream. A sender appends to one shared list and wakes
    the loop only when no wake-up is pending; the loop hands out everything listed by then.
    Each queue still gets its texts in order, before its end marker (the generation's future
    completes after its last text was listed, so its callback is scheduled after the wake-up).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: collections.deque[tuple[asyncio.Queue[Item | None], Item]] = collections.deque()
        self._scheduled = False

    def sender(self, queue: asyncio.Queue[Item | None]) -> Callable[[Item], None]:
        return functools.partial(self._send, queue)

    def _send(self, queue: asyncio.Queue[Item | None], text: Item) -> None:
        self._pending.append((queue, text))  # first list, then look: see _deliver
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False  # first clear, then empty: a text listed after this wakes again
        while self._pending:
            queue, text = self._pending.popleft()
            queue.put_nowait(text)
