"""The autoscaler's decision, one rule at a time: plain inputs, plain asserts."""

from __future__ import annotations

from collections.abc import Iterable

from modelyard.api import model_endpoint
from modelyard.builders import autoscale


def _policy(
    min_replicas: int = 1, max_replicas: int = 4, target: int = 8, delay: int = 10
) -> model_endpoint.Autoscaling:
    return model_endpoint.Autoscaling(
        min_replicas=min_replicas, max_replicas=max_replicas, target_requests=target,
        scale_down_delay_seconds=delay,
    )  # fmt: skip


def _seen(
    replicas: int,
    demands: Iterable[float],
    *,
    ready: int | None = None,
    unschedulable: bool = False,
    complete: bool = True,
    last_scale: float | None = None,
) -> autoscale.Observed:
    """One sample a second, the last at t=100."""
    values = list(demands)
    samples = [autoscale.Sample(100.0 - (len(values) - 1 - i), d, complete) for i, d in enumerate(values)]
    return autoscale.Observed(
        replicas=replicas, ready=replicas if ready is None else ready, unschedulable=unschedulable,
        samples=samples, now=100.0, last_scale=last_scale,
    )  # fmt: skip


def test_desired_is_demand_over_target_rounded_up_within_bounds() -> None:
    policy = _policy(min_replicas=1, max_replicas=4, target=8)
    assert [autoscale.wanted(d, policy) for d in (0, 1, 8, 9, 16, 17, 20, 1000)] == [1, 1, 1, 2, 2, 3, 3, 4]
    assert autoscale.wanted(0, _policy(min_replicas=0)) == 0


def test_scale_up_is_immediate_and_says_why() -> None:
    decision = autoscale.decide(_policy(), _seen(2, [17], ready=2))
    assert decision.replicas == 3 and decision.changed
    assert decision.reason == "demand 17 > 8 x 2 ready: 2 -> 3"


def test_any_demand_wakes_an_endpoint_at_zero_at_once() -> None:
    decision = autoscale.decide(_policy(min_replicas=0), _seen(0, [1]))
    assert (decision.replicas, decision.changed) == (1, True)
    assert "waking" in decision.reason
    assert autoscale.decide(_policy(min_replicas=0), _seen(0, [20])).replicas == 3


def test_waking_happens_even_when_a_gateway_is_missing() -> None:
    assert autoscale.decide(_policy(min_replicas=0), _seen(0, [2], complete=False)).replicas == 1


def test_idle_scales_to_zero_only_after_the_delay() -> None:
    policy = _policy(min_replicas=0, delay=10)
    assert autoscale.decide(policy, _seen(1, [0] * 5)).replicas == 1  # 4 s of idle so far
    decision = autoscale.decide(policy, _seen(1, [0] * 12))
    assert (decision.replicas, decision.changed) == (0, True)
    assert decision.reason == "demand at most 0 for 10s: 1 -> 0"


def test_scale_down_uses_the_window_maximum() -> None:
    policy = _policy(delay=10)
    # 3 replicas; demand fell to 4 but peaked at 12 within the last 10 s: 2 replicas, not 1.
    assert autoscale.decide(policy, _seen(3, [30, 12] + [4] * 9)).replicas == 3  # 30 at t=90
    assert autoscale.decide(policy, _seen(3, [30, 30, 12] + [4] * 10)).replicas == 2
    assert autoscale.decide(policy, _seen(3, [30, 12] + [4] * 11)).replicas == 1


def test_jitter_around_a_boundary_does_not_flap() -> None:
    policy = _policy(delay=5)
    replicas, history, changes = 1, [], 0
    for second in range(60):
        history.append(autoscale.Sample(float(second), 9.0 if second % 2 else 7.0))
        seen = autoscale.Observed(replicas, replicas, False, list(history), float(second))
        decision = autoscale.decide(policy, seen)
        changes += decision.changed
        replicas = decision.replicas
    assert replicas == 2
    assert changes == 1


def test_never_scales_down_on_a_round_with_a_missing_gateway() -> None:
    decision = autoscale.decide(_policy(min_replicas=0, delay=2), _seen(2, [0] * 10, complete=False))
    assert (decision.replicas, decision.changed) == (2, False)
    assert "did not answer" in decision.reason


def test_a_missing_gateway_earlier_in_the_window_also_holds() -> None:
    policy = _policy(min_replicas=0, delay=5)
    samples = [autoscale.Sample(float(t), 0.0, t != 98) for t in range(90, 101)]
    seen = autoscale.Observed(1, 1, False, samples, 100.0)
    assert autoscale.decide(policy, seen).replicas == 1


def test_full_cluster_holds_instead_of_adding_pods_that_cannot_schedule() -> None:
    decision = autoscale.decide(_policy(), _seen(2, [30], ready=1, unschedulable=True))
    assert (decision.replicas, decision.changed) == (2, False)
    assert decision.reason.startswith("cluster full: pods Pending Unschedulable; holding at 2")


def test_full_cluster_still_scales_down() -> None:
    decision = autoscale.decide(_policy(delay=3), _seen(3, [0] * 6, ready=1, unschedulable=True))
    assert decision.replicas == 1


def test_bounds_apply_at_once() -> None:
    assert autoscale.decide(_policy(max_replicas=2), _seen(5, [0])).reason == "above maxReplicas 2: 5 -> 2"
    assert autoscale.decide(_policy(min_replicas=2), _seen(0, [0])).replicas == 2


def test_a_recent_change_waits_the_delay_before_scaling_down() -> None:
    policy = _policy(delay=10)
    assert autoscale.decide(policy, _seen(2, [0] * 20, last_scale=95.0)).replicas == 2
    assert autoscale.decide(policy, _seen(2, [0] * 20, last_scale=90.0)).replicas == 1


def test_steady_demand_holds() -> None:
    decision = autoscale.decide(_policy(), _seen(2, [16] * 20))
    assert (decision.replicas, decision.changed) == (2, False)
    assert decision.reason == "demand 16 fits 2 x 8"


def test_no_sample_holds() -> None:
    seen = autoscale.Observed(2, 2, False, [], 100.0)
    assert autoscale.decide(_policy(), seen) == autoscale.Decision(2, "no demand sample yet", False)
