"""A model's concurrency limiter: at most N calls running, at most M waiting, the rest get 429
(not the operator's admission webhook, :mod:`modelyard.controllers.admission`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from modelyard.runtime import errors


class Limiter:
    def __init__(self, name: str, max_parallelism: int, max_queue: int) -> None:
        self.name = name
        self.max_parallelism = max(1, max_parallelism)
        self.max_queue = max(0, max_queue)
        self._semaphore = asyncio.Semaphore(self.max_parallelism)
        self.waiting = 0
        self.running = 0

    @property
    def depth(self) -> int:
        return self.waiting + self.running

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the model's parallel slots; OverloadedError when the queue is full."""
        if self._semaphore.locked() and self.waiting >= self.max_queue:
            raise errors.OverloadedError(
                f"model {self.name!r} is busy: {self.running} running, {self.waiting} waiting; retry later",
                model=self.name,
            )
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._semaphore.release()
