"""The request timeout (``--request-timeout``), kept by one timer for all requests in flight.

``asyncio.timeout`` arms and cancels a timer per request, which the gateway's profile showed as
about 5% of a request's CPU time. Every request has the same timeout, so the order in which
requests start is the order of their deadlines: :class:`Deadlines` keeps the requests in flight
in a dict in that order, and one timer, armed for the oldest one's deadline, cancels the tasks
whose deadline has passed (popping them from the front) and re-arms for the next. A request
costs a dict insert and a pop; with nothing in flight the timer stops at its next firing (and
is armed again by the next request). A task cancelled so
is noted: :meth:`Deadlines.done` tells its ``CancelledError`` from any other (the client
leaving, shutdown), as ``asyncio.timeout`` does. The timer fires at the oldest deadline or
:attr:`Deadlines.tick` after the last firing, whichever is later, so a request may overrun
its timeout by up to ``tick`` (a twentieth of the timeout, at most 0.25 s).
"""

from __future__ import annotations

import asyncio


class Deadlines:
    """The requests in flight, by start, each cancelled once ``timeout`` seconds have passed."""

    __slots__ = ("_due", "_expired", "_timer", "tick", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tick = min(max(timeout / 20, 0.005), 0.25)
        self._due: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, task: asyncio.Task[object]) -> None:
        """Start ``task``'s clock (a task in flight once at a time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        self._due[task] = deadline
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._fire)

    def done(self, task: asyncio.Task[object]) -> bool:
        """``task``'s request is over; whether its deadline had passed and it was cancelled for
        that (said once: the caller undoes that cancellation, see ``Task.uncancel``)."""
        self._due.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._timer = None
        due = self._due
        while due:
            task, deadline = next(iter(due.items()))
            if deadline > now:
                self._timer = loop.call_at(max(deadline, now + self.tick), self._fire)
                return
            del due[task]
            if not task.done():
                self._expired.add(task)
                task.cancel()
