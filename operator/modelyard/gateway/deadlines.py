"""Waits of one length shared by many requests, kept by one timer: the request timeout
(``--request-timeout``) and a stream's first keepalive (``--keepalive-interval``).

``asyncio.timeout`` (or ``loop.call_later``) arms and cancels a timer per request, which the
gateway's profile showed as about 5% of a request's CPU time. Every request waits the same
length, so the order in which the waits start is the order in which they come due:
:class:`Timers` keeps them in a dict in that order, and one timer, armed for the oldest one,
calls ``fire`` for each that has come due (popping them from the front) and re-arms for the
next. A wait costs a dict insert and a pop; with none pending the timer stops at its next
firing (and is armed again by the next wait). The timer fires at the oldest due time or
:attr:`Timers.tick` after the last firing, whichever is later, so a wait may run over by up to
``tick`` (a twentieth of its length, at most 0.25 s).

:class:`Deadlines` is the request timeout on it: a task whose deadline passes is cancelled and
noted, and :meth:`Deadlines.done` tells its ``CancelledError`` from any other (the client
leaving, shutdown), as ``asyncio.timeout`` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class Timers(Generic[T]):
    """Items each due ``delay`` seconds after :meth:`add`; ``fire(item)`` is called then, unless
    it was :meth:`discard`-ed first."""

    __slots__ = ("_due", "_fire_one", "_timer", "delay", "tick")

    def __init__(self, delay: float, fire: Callable[[T], None]) -> None:
        self.delay = delay
        self.tick = min(max(delay / 20, 0.005), 0.25)
        self._fire_one = fire
        self._due: dict[T, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, item: T, loop: asyncio.AbstractEventLoop) -> None:
        """Start ``item``'s wait (an item waits once at a time). ``loop``: the running one
        (passed, not looked up: ``asyncio.get_running_loop()`` is a ``getpid()`` system call)."""
        due = loop.time() + self.delay
        self._due[item] = due
        if self._timer is None:
            self._timer = loop.call_at(due, self._fire, loop)

    def discard(self, item: T) -> None:
        """``item`` no longer waits (nothing if it came due already)."""
        self._due.pop(item, None)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        self._timer = None
        pending = self._due
        while pending:
            item, due = next(iter(pending.items()))
            if due > now:
                self._timer = loop.call_at(max(due, now + self.tick), self._fire, loop)
                return
            del pending[item]
            self._fire_one(item)


class Deadlines:
    """The requests in flight, by start, each cancelled once ``timeout`` seconds have passed."""

    __slots__ = ("_expired", "_timers")

    def __init__(self, timeout: float) -> None:
        self._timers: Timers[asyncio.Task[object]] = Timers(timeout, self._expire)
        self._expired: set[asyncio.Task[object]] = set()

    @property
    def timeout(self) -> float:
        return self._timers.delay

    @property
    def tick(self) -> float:
        return self._timers.tick

    def add(self, task: asyncio.Task[object]) -> None:
        """Start ``task``'s clock (a task in flight once at a time)."""
        self._timers.add(task, task.get_loop())

    def done(self, task: asyncio.Task[object]) -> bool:
        """``task``'s request is over; whether its deadline had passed and it was cancelled for
        that (said once: the caller undoes that cancellation, see ``Task.uncancel``)."""
        self._timers.discard(task)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _expire(self, task: asyncio.Task[object]) -> None:
        if not task.done():
            self._expired.add(task)
            task.cancel()
