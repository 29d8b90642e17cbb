"""Requests and tokens per minute for each API key: the ``<name>.rpm`` and ``<name>.tpm`` limits.

Both are counted over a sliding window of the last 60 seconds that moves in one-second steps
(one bucket per second, so a key costs at most 60 buckets per limit however busy it is):

* **rpm**: a request is refused while the requests the key started in the window reach the
  limit; it is counted when it is admitted (refused ones are not counted), and it is allowed
  again as soon as the oldest of them leaves the window;
* **tpm**: tokens are counted when an answer reports its ``usage`` (prompt + completion; a
  stream's final usage chunk); a request is refused while the tokens of the window reach the
  limit. A request's size is known only at its end, so the one that crosses the limit is
  served whole, and later ones wait (LiteLLM's ``tpm_limit`` works the same way).

A refusal says which limit and in how many whole seconds a request would be admitted again
(the ``Retry-After`` header). The clock is injected: the tests drive it by hand. One
gateway process counts on its own; with N replicas a key gets up to N times its limits.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Callable

from modelyard.gateway import auth

WINDOW = 60
"""Seconds in the window."""


class Window:
    """Amounts added in the last :data:`WINDOW` seconds, in one-second buckets."""

    __slots__ = ("_buckets", "_total")

    def __init__(self) -> None:
        self._buckets: collections.deque[list[int]] = collections.deque()  # [second, amount]
        self._total = 0

    def _expire(self, now: float) -> None:
        oldest = math.floor(now) - WINDOW
        while self._buckets and self._buckets[0][0] <= oldest:
            self._total -= self._buckets.popleft()[1]

    def total(self, now: float) -> int:
        self._expire(now)
        return self._total

    def add(self, now: float, amount: int) -> None:
        self._expire(now)
        second = math.floor(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += amount
        else:
            self._buckets.append([second, amount])
        self._total += amount

    def wait(self, now: float, limit: int) -> float:
        """Seconds until the total is below ``limit`` again; 0 when it is now."""
        excess = self.total(now) - limit + 1
        for second, amount in self._buckets:
            if excess <= 0:
                break
            excess -= amount
            if excess <= 0:
                return second + WINDOW - now
        return 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused (429) and when to come back."""

    limit: str
    """``rpm`` or ``tpm``."""
    retry_after: int
    """Whole seconds, at least 1."""
    message: str


_UNITS = {"rpm": "requests", "tpm": "tokens"}


class RateLimiter:
    """The rpm and tpm windows of every key, by key name."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], Window] = {}

    def _refusal(self, key: auth.ApiKey, limit: str, value: int, now: float) -> Refusal | None:
        window = self._windows.get((key.name, limit))
        wait = window.wait(now, value) if window is not None else 0.0
        if wait <= 0:
            return None
        seconds = max(1, math.ceil(wait))
        return Refusal(
            limit,
            seconds,
            f"this API key is over its limit of {value} {_UNITS[limit]} per minute ({limit}); "
            f"retry after {seconds} s",
        )

    def admit(self, key: auth.ApiKey) -> Refusal | None:
        """None, and the request counted, when the key is under its limits; else why not."""
        now = self._clock()
        refused = (key.tpm and self._refusal(key, "tpm", key.tpm, now)) or (
            key.rpm and self._refusal(key, "rpm", key.rpm, now)
        )
        if refused:
            return refused
        if key.rpm:
            self._windows.setdefault((key.name, "rpm"), Window()).add(now, 1)
        return None

    def count_tokens(self, key: auth.ApiKey, usage: object) -> int:
        """Count the tokens of a response's ``usage`` against the key; returns them."""
        spent = tokens(usage)
        if key.tpm and spent:
            self._windows.setdefault((key.name, "tpm"), Window()).add(self._clock(), spent)
        return spent


def tokens(usage: object) -> int:
    """Prompt + completion tokens of an OpenAI ``usage`` object (0 when there is none)."""
    if not isinstance(usage, dict):
        return 0
    counts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return sum(c for c in counts if isinstance(c, int) and not isinstance(c, bool) and c > 0)
