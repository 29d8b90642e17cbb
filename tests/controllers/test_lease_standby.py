"""A standby asks for the Lease again just past the holder's expiry, not up to a renewal later.

No cluster: the coordination API is a small fake that returns one Lease record.
"""

from __future__ import annotations

import datetime
import types
from typing import Any

import pytest
from kubernetes import client

from modelyard.controllers import leader


def _standby(holder: str, renewed_ago: float, duration: int = 15) -> tuple[leader.Lease, list[Any]]:
    renewed = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=renewed_ago)
    record = types.SimpleNamespace(
        spec=types.SimpleNamespace(
            holder_identity=holder, renew_time=renewed, acquire_time=renewed,
            lease_duration_seconds=duration, lease_transitions=0,
        ),
        metadata=types.SimpleNamespace(resource_version="7"),
    )  # fmt: skip
    replaced: list[Any] = []
    lease = leader.Lease(client.ApiClient(), "ns", duration=duration, renew=5)
    lease.coordination = types.SimpleNamespace(
        read_namespaced_lease=lambda name, namespace: record,
        replace_namespaced_lease=lambda name, namespace, body: replaced.append(body),
    )
    return lease, replaced


def test_a_standby_asks_again_at_the_renewal_period_while_the_holder_is_far_from_expiry() -> None:
    lease, replaced = _standby("other", renewed_ago=1)
    assert not lease.try_acquire() and not replaced
    assert lease.retry_in() == 5


@pytest.mark.parametrize("renewed_ago", [12.0, 14.5])
def test_a_standby_asks_again_just_past_the_expiry_when_it_comes_sooner(renewed_ago: float) -> None:
    lease, _ = _standby("other", renewed_ago=renewed_ago)
    assert not lease.try_acquire()
    left = 15 - renewed_ago
    assert 0 < lease.retry_in() <= left + 0.2
    assert lease.retry_in() < lease.renew


def test_an_expired_hold_is_taken_and_the_standby_forgets_the_expiry() -> None:
    lease, replaced = _standby("other", renewed_ago=16)
    assert lease.try_acquire()
    assert replaced[0]["spec"]["holderIdentity"] == lease.identity
    assert replaced[0]["spec"]["leaseTransitions"] == 1
    assert lease.expires is None and lease.retry_in() == 5
