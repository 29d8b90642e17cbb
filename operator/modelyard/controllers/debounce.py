"""Coalesce bursts of triggers (pod events, entry changes) into one reconcile per object.

``schedule(key, delay)`` runs the reconcile function for ``key`` once after ``delay``; more
triggers meanwhile are folded in (an earlier one brings the run forward). A trigger that arrives
while the reconcile runs schedules one more run after it, with the shortest delay asked for, so
the last event is never lost and a reconcile that asks to look again in 30 s is not run again
at once. While ``gate`` is cleared (the operator cannot be sure it still holds its Lease) runs
wait for it, folding triggers in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class Debouncer:
    def __init__(
        self, run: Callable[[Hashable], Awaitable[None]], on_error: Callable[[Hashable], None] | None = None
    ) -> None:
        self._run = run
        self._on_error = on_error
        self._pending: dict[Hashable, tuple[float, asyncio.Task[None]]] = {}
        """Scheduled runs: when each is due (loop time) and its task."""
        self._running: set[Hashable] = set()
        self._again: dict[Hashable, float] = {}
        """Runs asked for while running: the shortest delay asked for."""
        self.gate: asyncio.Event | None = None

    def schedule(self, key: Hashable, delay: float = 0.2) -> None:
        if key in self._running:
            self._again[key] = min(delay, self._again.get(key, delay))
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if key in self._pending:
            scheduled, task = self._pending[key]
            if scheduled <= due:
                return
            task.cancel()
        self._pending[key] = (due, loop.create_task(self._later(key, delay)))

    async def _later(self, key: Hashable, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.gate is not None:
            await self.gate.wait()
        self._pending.pop(key, None)
        self._running.add(key)
        try:
            await self._run(key)
        except Exception:
            log.exception("reconcile of %s failed; retrying in 5 s", key)
            if self._on_error is not None:
                self._on_error(key)
            self._again[key] = 5.0
        finally:
            self._running.discard(key)
        if key in self._again:
            self.schedule(key, self._again.pop(key))

    async def drain(self) -> None:
        """Wait for everything scheduled now (tests)."""
        while self._pending or self._running:
            await asyncio.sleep(0.05)
