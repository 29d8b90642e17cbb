"""A standby asks for the Lease again just past the holder's expiry, not up to a renewal later.

No cluster: the operator's client is a small fake that returns one Lease record.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from modelyard.controllers import leader


class _Kube:
    """Answers a read with ``record``; records replacements."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.replaced: list[dict[str, Any]] = []

    async def get(self, kind: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.record

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.replaced.append(obj)
        return obj


def _standby(holder: str, renewed_ago: float, duration: int = 15) -> tuple[leader.Lease, list[Any]]:
    renewed = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=renewed_ago)
    stamp = renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # a MicroTime, as the API server writes it
    kube = _Kube({
        "spec": {"holderIdentity": holder, "renewTime": stamp, "acquireTime": stamp,
                 "leaseDurationSeconds": duration, "leaseTransitions": 0},
        "metadata": {"resourceVersion": "7"},
    })  # fmt: skip
    lease = leader.Lease(kube, "ns", duration=duration, renew=5)  # type: ignore[arg-type]
    return lease, kube.replaced


def _try(lease: leader.Lease) -> bool:
    return asyncio.run(lease.try_acquire())


def test_a_standby_asks_again_at_the_renewal_period_while_the_holder_is_far_from_expiry() -> None:
    lease, replaced = _standby("other", renewed_ago=1)
    assert not _try(lease) and not replaced
    assert lease.retry_in() == 5


@pytest.mark.parametrize("renewed_ago", [12.0, 14.5])
def test_a_standby_asks_again_just_past_the_expiry_when_it_comes_sooner(renewed_ago: float) -> None:
    lease, _ = _standby("other", renewed_ago=renewed_ago)
    assert not _try(lease)
    left = 15 - renewed_ago
    assert 0 < lease.retry_in() <= left + 0.2
    assert lease.retry_in() < lease.renew


def test_an_expired_hold_is_taken_and_the_standby_forgets_the_expiry() -> None:
    lease, replaced = _standby("other", renewed_ago=16)
    assert _try(lease)
    assert replaced[0]["spec"]["holderIdentity"] == lease.identity
    assert replaced[0]["spec"]["leaseTransitions"] == 1
    assert lease.expires is None and lease.retry_in() == 5
