"""The debouncer keeps the delay a reconcile asks for: a look-again-later from inside the
reconcile (a conflict rechecked in 30 s, an upstream in 10 s) is not run again at once, and an
earlier trigger brings a scheduled run forward."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from modelyard.controllers import debounce


def test_a_recheck_asked_for_inside_the_reconcile_waits_its_delay() -> None:
    async def scenario() -> list[Hashable]:
        runs: list[Hashable] = []
        queue: debounce.Debouncer

        async def run(key: Hashable) -> None:
            runs.append(key)
            queue.schedule(key, 30.0)  # look again in 30 s

        queue = debounce.Debouncer(run)
        queue.schedule("a", 0)
        await asyncio.sleep(0.5)
        return runs

    assert asyncio.run(scenario()) == ["a"]


def test_an_earlier_trigger_brings_a_scheduled_run_forward() -> None:
    async def scenario() -> list[Hashable]:
        runs: list[Hashable] = []

        async def run(key: Hashable) -> None:
            runs.append(key)

        queue = debounce.Debouncer(run)
        queue.schedule("a", 30.0)
        queue.schedule("a", 0.05)
        queue.schedule("a", 10.0)  # a later one is folded into the earlier run
        await asyncio.sleep(0.5)
        return runs

    assert asyncio.run(scenario()) == ["a"]


def test_a_trigger_during_a_run_runs_once_more() -> None:
    async def scenario() -> list[Hashable]:
        runs: list[Hashable] = []
        queue: debounce.Debouncer

        async def run(key: Hashable) -> None:
            runs.append(key)
            if len(runs) == 1:
                queue.schedule(key, 30.0)
                queue.schedule(key, 0)  # an event meanwhile: the shortest delay wins

        queue = debounce.Debouncer(run)
        queue.schedule("a", 0)
        await asyncio.sleep(0.5)
        return runs

    assert asyncio.run(scenario()) == ["a", "a"]
