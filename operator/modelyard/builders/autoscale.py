"""How many replicas an autoscaled ModelEndpoint should have (pure: no clock, no I/O).

Demand is what the gateways report per endpoint: requests in flight + queued + held, summed over
every gateway replica. Each poll the controller appends one :class:`Sample` and calls
:func:`decide`, which applies, in order:

    bounds        replicas outside [minReplicas, maxReplicas] move inside at once
    wake          demand > 0 at 0 replicas: max(1, minReplicas, wanted) at once, no window
    up            wanted(latest demand) > replicas: scale up at once ...
    full cluster  ... unless pods are Pending Unschedulable: hold (adding more would not
                  schedule either); the reason says so
    down          wanted(max demand over the last scaleDownDelaySeconds) < replicas, the
                  samples cover that whole delay, every one of them heard every gateway, and
                  the last change is that long ago: scale down to it in one step
    hold          otherwise

``wanted(d) = ceil(d / targetRequests)`` bounded by [minReplicas, maxReplicas]. Scaling down on
the window's *maximum* is the hysteresis: demand that jitters around a boundary scales up on
its first peak and stays there, instead of flapping each poll. A round in which a gateway did
not answer never scales down (no data is not zero demand).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from modelyard.api import model_endpoint


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One poll: the summed demand, when (seconds on a monotonic clock), and whether every
    gateway answered."""

    at: float
    demand: float
    complete: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Observed:
    """The endpoint as the controller sees it now."""

    replicas: int
    """spec.replicas (the Deployment's desired count)."""
    ready: int
    """Ready pods."""
    unschedulable: bool
    """Some pod is Pending with PodScheduled=False/Unschedulable."""
    samples: Sequence[Sample]
    """Oldest first; the last is this poll. At least scaleDownDelaySeconds of them are kept."""
    now: float
    last_scale: float | None = None
    """When replicas last changed (same clock); None: not since the controller started."""


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    replicas: int
    reason: str
    changed: bool


def wanted(demand: float, policy: model_endpoint.Autoscaling) -> int:
    """Replicas for ``demand`` at ``targetRequests`` each, within the bounds."""
    raw = math.ceil(max(0.0, demand) / policy.target_requests - 1e-9)
    return min(policy.max_replicas, max(policy.min_replicas, raw))


def window(samples: Sequence[Sample], now: float, seconds: float) -> list[Sample]:
    """The samples of the last ``seconds``."""
    return [s for s in samples if s.at >= now - seconds]


def decide(policy: model_endpoint.Autoscaling, seen: Observed) -> Decision:
    """The replica count for this poll, and why."""
    current = seen.replicas
    if not seen.samples:
        return _hold(current, "no demand sample yet")
    latest = seen.samples[-1]
    demand = latest.demand
    if current > policy.max_replicas:
        return _to(current, policy.max_replicas, f"above maxReplicas {policy.max_replicas}")
    if current < policy.min_replicas:
        return _to(current, policy.min_replicas, f"below minReplicas {policy.min_replicas}")
    up = wanted(demand, policy)
    if current == 0 and demand > 0:
        return _to(current, max(1, up), f"demand {demand:g} at 0 replicas: waking")
    if up > current:
        if seen.unschedulable:
            return _hold(
                current,
                f"cluster full: pods Pending Unschedulable; holding at {current} "
                f"(demand {demand:g} wants {up})",
            )
        return _to(current, up, f"demand {demand:g} > {policy.target_requests} x {seen.ready} ready")
    delay = policy.scale_down_delay_seconds
    recent = window(seen.samples, seen.now, delay) or [latest]
    peak = max(s.demand for s in recent)
    down = wanted(peak, policy)
    if down >= current:
        return _hold(current, f"demand {demand:g} fits {current} x {policy.target_requests}")
    if not all(s.complete for s in recent):
        return _hold(current, f"a gateway did not answer: not scaling down below {current}")
    covered = seen.samples[0].at <= seen.now - delay  # watched for the whole delay
    settled = seen.last_scale is None or seen.now - seen.last_scale >= delay
    if not (covered and settled):
        return _hold(current, f"demand {peak:g} wants {down}; waiting {delay}s of low demand")
    return _to(current, down, f"demand at most {peak:g} for {delay}s")


def _to(current: int, replicas: int, why: str) -> Decision:
    return Decision(replicas, f"{why}: {current} -> {replicas}", replicas != current)


def _hold(current: int, why: str) -> Decision:
    return Decision(current, why, False)
