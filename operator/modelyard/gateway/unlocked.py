"""prometheus_client's series without their locks, for the gateway's hot path (issue #19).

Each ``inc`` or ``observe`` of a prometheus_client series takes a ``threading.Lock`` (twice for
a histogram); the gateway changes and scrapes its metrics on one thread, its event loop, so
:func:`unlocked` swaps a labelled child's values for plain ones that keep the same interface,
and gives the child an ``inc`` / ``dec`` / ``observe`` of its own that skips the checks a
child made by ``.labels()`` always passes (a histogram's bucket found by bisection, not a
scan). What a scrape shows is unchanged (tests/gateway/test_hot_path.py compares expositions).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import prometheus_client.values


class Value:
    """The value of one series as prometheus_client's ``MutexValue`` holds it, without the lock:
    the gateway's metrics are changed and scraped on one thread, its event loop, so the lock
    (taken twice per counter step, the largest part of its cost) guards nothing."""

    __slots__ = ("_exemplar", "_value")

    def __init__(self, value: float) -> None:
        self._value = value
        self._exemplar: Any = None

    def inc(self, amount: float) -> None:
        self._value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self._value = value

    def get(self) -> float:
        return self._value

    def set_exemplar(self, exemplar: Any) -> None:
        self._exemplar = exemplar

    def get_exemplar(self) -> Any:
        return self._exemplar


def unlocked(child: Any) -> Any:
    """``child`` (a labelled counter, gauge or histogram) with :class:`Value`s for its locked
    values; a child of another kind, or of a prometheus_client that keeps them otherwise, is
    left as it is (tests/gateway/test_hot_path.py checks that the swap happens)."""
    locked: Any = prometheus_client.values.MutexValue
    value: Any = getattr(child, "_value", None)
    if type(value) is locked:
        child._value = Value(value.get())
        if type(child) is prometheus_client.Counter:
            vars(child)["inc"] = _counter_inc(child, child._value)  # (an instance's own method)
        elif type(child) is prometheus_client.Gauge and not child._is_most_recent:
            vars(child)["inc"], vars(child)["dec"] = _gauge_steps(child._value)
    total: Any = getattr(child, "_sum", None)
    buckets: Any = getattr(child, "_buckets", None)
    if type(total) is locked and isinstance(buckets, list):
        child._sum = Value(total.get())
        child._buckets = [Value(b.get()) for b in buckets]
        if type(child) is prometheus_client.Histogram:
            vars(child)["observe"] = _histogram_observe(
                child, child._sum, child._buckets, child._upper_bounds
            )
    return child


# The children's own methods, less ``_raise_if_not_observable`` (a child is observable).


def _counter_inc(child: Any, value: Value) -> Callable[..., None]:
    slow = type(child).inc

    def inc(amount: float = 1, exemplar: Any = None) -> None:
        if amount < 0 or exemplar:  # the refusal, or an exemplar: prometheus_client's own
            slow(child, amount, exemplar)
        else:
            value._value += amount

    return inc


def _gauge_steps(value: Value) -> tuple[Callable[[float], None], Callable[[float], None]]:
    def inc(amount: float = 1) -> None:
        value._value += amount

    def dec(amount: float = 1) -> None:
        value._value -= amount

    return inc, dec


def _histogram_observe(
    child: Any, total: Value, buckets: list[Value], bounds: list[float]
) -> Callable[..., None]:
    slow = type(child).observe

    def observe(amount: float, exemplar: Any = None) -> None:
        if exemplar or amount != amount:  # an exemplar, or NaN (no bucket): prometheus_client's own
            slow(child, amount, exemplar)
            return
        total._value += amount
        buckets[bisect.bisect_left(bounds, amount)]._value += 1  # the first bound >= amount

    return observe
