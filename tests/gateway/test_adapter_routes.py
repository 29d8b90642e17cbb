"""Live adapters in the route table: an adapter's served name reaches only the base endpoint's
ready pods that have it loaded (``status.adapters``), hashed by the adapter's name with bounded
loads, with the endpoint's weight, fallbacks and hold, in memory."""

from __future__ import annotations

import collections
from typing import Any

from modelyard import api
from modelyard.gateway import balancer, endpoint_info, proxy, routes

PODS = [(f"chat-{i}", f"http://10.0.0.{i}:8000") for i in range(4)]


def _endpoint(name: str = "chat", namespace: str = "ml", **status: Any) -> api.ModelEndpoint:
    return api.ModelEndpoint.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"model": "llama", "fallback": ["backup"], "weight": 50},
            "status": {"phase": "Ready", **status},
        }
    )


def _infos(endpoint: api.ModelEndpoint, allowed: Any = lambda name: True) -> list[routes.EndpointInfo]:
    key = f"{endpoint.namespace}/{endpoint.name}"
    base, _ = endpoint_info.info(
        key,
        endpoint.to_wire(),
        endpoint,
        None,
        "llama",
        ("backup",),
        {key: [u for _, u in PODS]},
        lambda ref, ns: (None, None),
    )
    return [base, *endpoint_info.adapter_infos(base, endpoint, PODS, allowed)]


ADAPTERS = [
    {"name": "sql", "pods": ["chat-1", "chat-2", "chat-3"], "ready": True},
    {"name": "poet", "pods": ["chat-0"], "ready": False},
    {"name": "broken", "pods": [], "ready": False, "reason": "AdapterLoadFailed"},
]


def test_an_adapter_routes_to_the_pods_that_have_it_with_the_endpoints_weight_and_fallbacks() -> None:
    table = routes.build_table(_infos(_endpoint(adapters=ADAPTERS)))
    sql = table.get("sql")
    assert sql is not None
    (only,) = sql.endpoints
    assert only.name == "ml/chat" and only.weight == 50  # the base endpoint's name: its metrics, its demand
    assert [t.base for t in only.targets] == [f"{u}/v1" for _, u in PODS[1:]]
    assert sql.fallback == ("backup",)
    poet = table.get("poet")
    assert poet is not None and [t.base for t in poet.endpoints[0].targets] == ["http://10.0.0.0:8000/v1"]
    assert table.get("broken") is None  # on no pod, the endpoint does not hold: not routable
    assert table.ready_names() == ["llama", "poet", "sql"]  # what /v1/models lists


def test_an_adapter_name_the_namespace_may_not_serve_is_left_out() -> None:
    infos = _infos(_endpoint(adapters=ADAPTERS), allowed=lambda name: name != "sql")
    assert "sql" not in {i.served_name for i in infos}


def test_an_adapters_requests_concentrate_on_one_pod_until_it_is_at_the_load_bound() -> None:
    table = routes.build_table(_infos(_endpoint(adapters=ADAPTERS)))
    sql = table.get("sql")
    assert sql is not None and sql.affinity is not None
    chooser = balancer.WeightedLeastBusy()
    key = proxy.affinity_key(None, sql.affinity)  # type: ignore[arg-type]  # a fixed key needs no request
    assert key == "a:sql"
    one_at_a_time = collections.Counter()
    for _ in range(20):
        choice = chooser.choose(sql, (), key)
        assert choice is not None and choice[1] is not None
        chooser.started(choice[1])
        chooser.finished(choice[1], True)
        one_at_a_time[choice[1].key] += 1
    ((owner, count),) = one_at_a_time.items()  # an idle pod keeps every request of the adapter
    assert count == 20 and owner != "ml/chat@10.0.0.0:8000"  # chat-0 does not have sql loaded
    busy = collections.Counter()
    for _ in range(9):
        choice = chooser.choose(sql, (), key)
        assert choice is not None and choice[1] is not None
        chooser.started(choice[1])  # every request stays in flight: the bound sends some on
        busy[choice[1].key] += 1
    assert busy[owner] == max(busy.values()) and len(busy) > 1
    assert "ml/chat@10.0.0.0:8000" not in busy


def test_the_route_index_keeps_an_endpoint_and_its_adapters_together() -> None:
    index = routes.RouteIndex()
    infos = _infos(_endpoint(adapters=ADAPTERS))
    index.put("ml/chat", infos)
    assert index.table() == routes.build_table(infos)
    fewer = _infos(_endpoint(adapters=ADAPTERS[:1]))
    index.put("ml/chat", fewer)
    assert index.table() == routes.build_table(fewer)
    assert index.table().get("poet") is None
    index.put("ml/chat", None)
    assert index.table().models == {}
