"""Progress lines for a run that takes minutes: one line per step, each with elapsed seconds.

A person watching ``modelyard quickstart`` should always see what it is doing and how long it
has taken, including the lines a long step prints itself (the Go build on a cold machine, the
endpoints' phase changes), which come out indented under their step.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_line(elapsed: float, message: str, *, detail: bool = False) -> str:
    """``[  12.3s] ==> message`` for a step, ``[  12.3s]       message`` for a detail line."""
    marker = "     " if detail else " ==> "
    return f"[{elapsed:6.1f}s]{marker}{message}"


def mask(secret: str) -> str:
    """``sk-…wxyz``: the first three and last four characters of a long secret, enough to tell
    keys apart; nothing of a short one."""
    if len(secret) < 24:
        return "…"
    return f"{secret[:3]}…{secret[-4:]}"


class Progress:
    """Prints step and detail lines, timed from its creation; ``clock`` is injectable for tests."""

    def __init__(self, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._out = out
        self._clock = clock
        self._start = clock()

    def elapsed(self) -> float:
        return self._clock() - self._start

    def _write(self, line: str) -> None:
        out = self._out if self._out is not None else sys.stdout
        print(line, file=out, flush=True)

    def step(self, message: str) -> None:
        self._write(format_line(self.elapsed(), message))

    def detail(self, message: str) -> None:
        for line in message.splitlines() or [""]:
            self._write(format_line(self.elapsed(), line.rstrip(), detail=True))

    def plain(self, text: str = "") -> None:
        """Untimed text (the answer, the what-next list)."""
        self._write(text)
