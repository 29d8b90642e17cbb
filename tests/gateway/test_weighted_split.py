"""Endpoints share a served name's traffic by weight; pods by requests in flight."""

from __future__ import annotations

import collections

from modelyard.gateway import balancer, discovery, routes


def _endpoint(name: str, weight: int, pods: int = 1) -> routes.EndpointInfo:
    targets = tuple(discovery.pod_target(name, f"http://10.0.0.{i}:8000") for i in range(pods))
    return routes.EndpointInfo(name, "llama", weight, targets=targets)


def _model(*infos: routes.EndpointInfo) -> routes.Model:
    model = routes.build_table(infos).get("llama")
    assert model is not None
    return model


def test_split_follows_weights_within_one_point_over_10k_requests() -> None:
    model = _model(
        _endpoint("ns/a", 700), _endpoint("ns/b", 200), _endpoint("ns/c", 100), _endpoint("ns/z", 0)
    )
    chooser = balancer.WeightedLeastBusy()
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(10_000):
        choice = chooser.choose(model, ())
        assert choice is not None
        counts[choice[0].name] += 1
    shares = {name: count / 100 for name, count in counts.items()}
    assert abs(shares["ns/a"] - 70) <= 1 and abs(shares["ns/b"] - 20) <= 1 and abs(shares["ns/c"] - 10) <= 1
    assert "ns/z" not in shares  # weight 0 takes no traffic


def test_uneven_weights_are_smooth_not_bursty() -> None:
    model = _model(_endpoint("ns/a", 5), _endpoint("ns/b", 1), _endpoint("ns/c", 1))
    chooser = balancer.WeightedLeastBusy()
    picks = []
    for _ in range(7):
        choice = chooser.choose(model, ())
        assert choice is not None
        picks.append(choice[0].name[-1])
    assert "".join(picks) == "aabacaa"  # nginx's smooth weighted round-robin sequence


def test_pod_with_fewest_requests_in_flight_wins() -> None:
    model = _model(_endpoint("ns/a", 100, pods=3))
    chooser = balancer.WeightedLeastBusy()
    busy, idle_one, idle_two = model.endpoints[0].targets
    chooser.started(busy)
    chooser.started(idle_one)
    for _ in range(20):
        choice = chooser.choose(model, ())
        assert choice is not None and choice[1] == idle_two


def test_idle_pods_share_the_load() -> None:
    model = _model(_endpoint("ns/a", 100, pods=3))
    chooser = balancer.WeightedLeastBusy()
    seen = collections.Counter()
    for _ in range(300):
        choice = chooser.choose(model, ())
        assert choice is not None
        seen[choice[1].key] += 1
    assert sorted(seen.values()) == [100, 100, 100]


def test_tried_targets_are_skipped_then_exhausted() -> None:
    model = _model(_endpoint("ns/a", 100, pods=2), _endpoint("ns/b", 1))
    chooser = balancer.WeightedLeastBusy()
    keys = [t.key for e in model.endpoints for t in e.targets]
    tried: set[str] = set()
    for _ in keys:
        choice = chooser.choose(model, tried)
        assert choice is not None and choice[1].key not in tried
        tried.add(choice[1].key)
    assert chooser.choose(model, tried) is None


def test_failing_pod_is_ejected_for_a_cooldown_then_returns() -> None:
    now = [0.0]
    model = _model(_endpoint("ns/a", 100, pods=2))
    chooser = balancer.WeightedLeastBusy(eject_after=2, eject_cooldown=5, clock=lambda: now[0])
    bad, good = model.endpoints[0].targets
    for expected in (False, True):
        chooser.started(bad)
        assert chooser.finished(bad, ok=False) is expected
    assert all(chooser.choose(model, ()) == (model.endpoints[0], good) for _ in range(10))
    # every other target already tried: an ejected one is still better than nothing
    assert chooser.choose(model, {good.key}) == (model.endpoints[0], bad)
    now[0] = 6.0
    assert {chooser.choose(model, ())[1] for _ in range(4)} == {bad, good}  # type: ignore[index]
