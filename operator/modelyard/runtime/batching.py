"""Dynamic batching: concurrent requests' items coalesced into one model call.

A request submits its items (texts to embed, query/document pairs to score) and awaits their
results. The collector takes the first waiting item and everything queued behind it; when
requests are arriving concurrently (the previous one came less than ``window`` earlier) it
keeps taking items for up to ``window`` seconds, until ``max_size`` items. A lone client so
never waits for the window, while concurrent clients fill batches (and requests that arrive
while a batch runs are all taken by the next one). It then runs the batch function once on a worker
thread, and hands each request its slice; a request larger than ``max_size`` is split over
several batches. Items beyond ``max_pending`` are refused with OverloadedError. (With
batching off, the server calls the model once per request instead; see ``served``.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from modelyard.runtime import errors

T = TypeVar("T")
R = TypeVar("R")


@dataclasses.dataclass
class _Job(Generic[T, R]):
    items: Sequence[T]
    future: asyncio.Future[list[R]]
    concurrent: bool = False
    results: list[R] = dataclasses.field(default_factory=list)
    taken: int = 0


class Batcher(Generic[T, R]):
    def __init__(
        self,
        name: str,
        fn: Callable[[list[T]], Sequence[R]],
        executor: concurrent.futures.Executor,
        *,
        max_size: int = 32,
        window: float = 0.005,
        max_pending: int = 4096,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self.fn = fn
        self.executor = executor
        self.max_size = max(1, max_size)
        self.window = max(0.0, window)
        self.max_pending = max_pending
        self.on_batch = on_batch
        self.pending = 0
        self._queue: asyncio.Queue[_Job[T, R]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._last = float("-inf")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._collect(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, items: Sequence[T]) -> list[R]:
        if not items:
            return []
        if self.pending + len(items) > self.max_pending:
            raise errors.OverloadedError(
                f"model {self.name!r} has {self.pending} items queued; retry later", model=self.name
            )
        self.start()
        now = time.monotonic()
        job: _Job[T, R] = _Job(
            items, asyncio.get_running_loop().create_future(), now - self._last < self.window
        )
        self._last = now
        self.pending += len(items)
        self._queue.put_nowait(job)
        try:
            return await job.future
        finally:
            self.pending -= len(items)

    async def _collect(self) -> None:
        carry: _Job[T, R] | None = None
        while True:
            job = carry or await self._queue.get()
            carry = None
            parts: list[tuple[_Job[T, R], int, int]] = []
            size = 0
            deadline = time.monotonic() + (self.window if job.concurrent else 0.0)
            while True:
                if not job.future.done():
                    take = min(self.max_size - size, len(job.items) - job.taken)
                    parts.append((job, job.taken, job.taken + take))
                    job.taken += take
                    size += take
                    if job.taken < len(job.items):
                        carry = job  # the rest goes in the next batch
                        break
                if size >= self.max_size:
                    break
                timeout = deadline - time.monotonic()
                try:
                    job = (
                        self._queue.get_nowait()
                        if timeout <= 0
                        else await asyncio.wait_for(self._queue.get(), timeout)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
            if parts:
                await self._run(parts, size)

    async def _run(self, parts: list[tuple[_Job[T, R], int, int]], size: int) -> None:
        batch = [item for job, lo, hi in parts for item in job.items[lo:hi]]
        if self.on_batch is not None:
            self.on_batch(size)
        loop = asyncio.get_running_loop()
        try:
            results = list(await loop.run_in_executor(self.executor, self.fn, batch))
        except Exception as exc:  # every request in the batch learns of the failure
            for job, _, _ in parts:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        pos = 0
        for job, lo, hi in parts:
            job.results.extend(results[pos : pos + hi - lo])
            pos += hi - lo
            if job.taken >= len(job.items) and len(job.results) >= len(job.items) and not job.future.done():
                job.future.set_result(job.results)
