"""The gateway's ownership index owns adapters' served names as the rule does (rule 4)."""

from __future__ import annotations

from modelyard import api
from modelyard.gateway import ownership_index


def endpoint(namespace: str, served: str, adapters: list[str]) -> api.ModelEndpoint:
    return api.ModelEndpoint.model_validate(
        {
            "apiVersion": "modelyard.io/v1alpha1",
            "kind": "ModelEndpoint",
            "metadata": {"name": "base", "namespace": namespace},
            "spec": {
                "model": "m",
                "servedName": served,
                "adapters": [{"name": name, "uri": f"pvc://loras/{name}"} for name in adapters],
            },
        }
    )


def test_a_second_namespace_may_not_route_an_adapter_name_the_first_serves() -> None:
    index = ownership_index.OwnershipIndex()
    index.endpoint("alice/base", endpoint("alice", "base-a", []), None, "2026-01-01T00:00:01Z")
    index.endpoint("bob/base", endpoint("bob", "base-b", []), None, "2026-01-01T00:00:02Z")
    index.decide(force=True)
    index.endpoint("alice/base", endpoint("alice", "base-a", ["sql"]), None, "2026-01-01T00:00:01Z")
    index.decide()
    index.endpoint("bob/base", endpoint("bob", "base-b", ["sql"]), None, "2026-01-01T00:00:02Z")
    index.decide()
    assert index.ownership.may_serve("alice", "sql")
    assert not index.ownership.may_serve("bob", "sql")


def test_an_adapter_name_passes_on_when_its_first_server_leaves() -> None:
    index = ownership_index.OwnershipIndex()
    index.endpoint("alice/base", endpoint("alice", "base-a", ["sql"]), None, "2026-01-01T00:00:01Z")
    index.endpoint("bob/base", endpoint("bob", "base-b", ["sql"]), None, "2026-01-01T00:00:02Z")
    index.decide(force=True)
    assert not index.ownership.may_serve("bob", "sql")
    index.endpoint("alice/base", None, None, None)
    index.decide()
    assert index.ownership.may_serve("bob", "sql")
