"""Coalesce bursts of triggers (pod events, entry changes) into one reconcile per object.

``schedule(key, delay)`` runs the reconcile function for ``key`` once after ``delay``; more
triggers meanwhile are folded in. A trigger that arrives while the reconcile runs schedules
one more run after it, so the last event is never lost. While ``gate`` is cleared (the
operator cannot be sure it still holds its Lease) runs wait for it, folding triggers in.
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
        self._pending: dict[Hashable, asyncio.Task[None]] = {}
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self.gate: asyncio.Event | None = None

    def schedule(self, key: Hashable, delay: float = 0.2) -> None:
        if key in self._running:
            self._again.add(key)
            return
        if key in self._pending:
            return
        self._pending[key] = asyncio.get_running_loop().create_task(self._later(key, delay))

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
            self._again.add(key)
            delay = 5.0
        else:
            delay = 0.2
        finally:
            self._running.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.schedule(key, delay)

    async def drain(self) -> None:
        """Wait for everything scheduled now (tests)."""
        while self._pending or self._running:
            await asyncio.sleep(0.05)
