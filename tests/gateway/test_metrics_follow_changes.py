"""The gateway's per-target and per-endpoint series follow the routes at the cost of a change.

``Metrics.follow`` now skips the served names whose Model object did not change and counts
live targets instead of collecting them again. On random sequences of tables (some followed,
some skipped, some followed twice) and of series made by requests in between (also for targets
already gone), it must leave exactly the series the former whole-table walk left.
"""

from __future__ import annotations

import random

import prometheus_client
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.gateway import discovery, metrics, routes


def _whole_table_follow(m: metrics.Metrics, table: routes.RouteTable) -> None:
    """What ``follow`` did before it followed changes: walk every model, endpoint and target
    (of a table other than the one followed last)."""
    if table is m._table:
        return
    m._table = table
    live = {(e.name, t.key) for model in table.models.values() for e in model.endpoints for t in e.targets}
    for key in [k for k in m._children if k[0] is m.in_flight and k[1] not in live]:
        del m._children[key]
        m.in_flight.remove(*key[1])
    endpoints = {e.name for model in table.models.values() for e in model.endpoints}
    for name in endpoints:
        m.endpoint(name)
    for name in [n for n in m._endpoints if n not in endpoints]:
        del m._endpoints[name]
        labels = name.split("/", 1)
        m.endpoint_demand.remove(*labels)
        m.endpoint_requests.remove(*labels)


def _series(m: metrics.Metrics) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in m.registry.collect()
        if family.name in ("modelyard_gateway_in_flight", "modelyard_gateway_endpoint_demand")
        for sample in family.samples
    }


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_following_changes_leaves_the_series_a_whole_table_walk_leaves(seed: int) -> None:
    rng = random.Random(seed)
    ours = metrics.Metrics(prometheus_client.CollectorRegistry())
    theirs = metrics.Metrics(prometheus_client.CollectorRegistry())
    index = routes.RouteIndex()
    tables = [index.table()]
    for _ in range(40):
        for _ in range(rng.randint(1, 4)):
            name = f"ns/ep{rng.randrange(6)}"
            pods = rng.sample(range(4), rng.randrange(4))
            targets = tuple(discovery.pod_target(name, f"http://10.0.0.{p}:8000") for p in pods)
            info = routes.EndpointInfo(name, f"m{rng.randrange(3)}", 100, rng.random() < 0.8, (), targets)
            index.put(name, info if rng.random() < 0.85 else None)
        tables.append(index.table())
        for _ in range(rng.randrange(3)):  # requests in between, on a table maybe already old
            model = rng.choice(list(rng.choice(tables[-3:]).models.values()) or [routes.Model("none")])
            for endpoint in model.endpoints:
                for target in endpoint.targets:
                    for m in (ours, theirs):
                        m.child(m.in_flight, endpoint.name, target.key).inc()
                        m.endpoint(endpoint.name)
        if rng.random() < 0.7:
            table = tables[-1] if rng.random() < 0.9 else tables[-2]
            ours.follow(table)
            _whole_table_follow(theirs, table)
            assert _series(ours) == _series(theirs)
            assert ours._endpoints.keys() == theirs._endpoints.keys()
