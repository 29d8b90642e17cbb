"""The operator's Lease keeper across API outages (no cluster: ``try_acquire`` is scripted).

A renewal that fails is retried; before the Lease may have expired nothing changes, after it the
reconciles' gate closes until a renewal succeeds; another holder stops the operator at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from modelyard.controllers import leader

pytestmark = pytest.mark.timeout(60)


def _lease(answers: Iterator[bool | Exception], duration: int) -> leader.Lease:
    lease = leader.Lease(None, "ns", duration=duration, renew=1)  # type: ignore[arg-type]  # no calls

    async def scripted() -> bool:
        answer = next(answers, True)
        if isinstance(answer, Exception):
            raise answer
        return answer

    lease.try_acquire = scripted  # type: ignore[method-assign]
    return lease


async def _watch(lease: leader.Lease, seconds: float, with_gate: bool = True) -> tuple[list[bool], bool]:
    """Run ``keep`` for ``seconds``; the gate's states over time, and whether it stopped."""
    stop, gate = asyncio.Event(), asyncio.Event()
    gate.set()
    keeper = asyncio.create_task(lease.keep(stop, gate if with_gate else None))
    seen = []
    for _ in range(int(seconds / 0.05)):
        await asyncio.sleep(0.05)
        seen.append(gate.is_set())
        if stop.is_set():
            break
    keeper.cancel()
    return seen, stop.is_set()


def test_a_short_outage_changes_nothing() -> None:
    outage = iter([True, ConnectionError("refused"), ConnectionError("refused"), True])
    seen, stopped = asyncio.run(_watch(_lease(outage, duration=10), 4.5))
    assert all(seen) and not stopped


def test_a_long_outage_holds_reconciles_back_until_the_lease_is_renewed() -> None:
    outage = iter([ConnectionError("refused")] * 4 + [True])
    seen, stopped = asyncio.run(_watch(_lease(outage, duration=3), 6))
    assert not stopped
    assert False in seen and seen[-1], "the gate closed, then opened again"
    assert seen[: seen.index(False)] and all(seen[: seen.index(False)])  # open until the deadline


def test_another_holder_stops_the_operator() -> None:
    _, stopped = asyncio.run(_watch(_lease(iter([True, False]), duration=10), 3))
    assert stopped


def test_without_a_gate_a_long_outage_stops_the_operator() -> None:
    outage = iter([ConnectionError("refused")] * 10)
    _, stopped = asyncio.run(_watch(_lease(outage, duration=3), 6, with_gate=False))
    assert stopped
