"""Create first, apply after (:mod:`modelyard.controllers.child_writes`), in memory: a new child is
one POST with no read; a taken name is read once and a foreign object left as it is; a POST's
Update entry is handed to the apply before the child is applied again."""

from __future__ import annotations

import asyncio
from typing import Any

from fakecluster import FakeCluster, make_context

from modelyard.controllers import child_writes, cluster

MANAGER = "modelyard-operator"


def _service(owner_uid: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "chat", "namespace": "team"}
    if owner_uid is not None:
        meta["ownerReferences"] = [
            {"kind": "ModelEndpoint", "name": "chat", "uid": owner_uid, "controller": True}
        ]
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {"ports": [{"port": 8000}]}}


def test_a_new_child_is_one_create() -> None:
    fake = FakeCluster()
    written, taken = asyncio.run(child_writes.put(make_context(fake), _service("u1"), None, "chat", "u1"))
    assert taken is None and written is not None
    assert fake.writes == [("create", "Service", "chat")]


def test_a_taken_name_of_anyone_else_is_read_and_left_alone() -> None:
    theirs = {**_service(), "spec": {"ports": [{"port": 1234}]}}
    fake = FakeCluster(theirs)
    written, taken = asyncio.run(child_writes.put(make_context(fake), _service("u1"), None, "chat", "u1"))
    assert written is None and taken is not None and "Service team/chat" in taken
    assert fake.writes == []  # the create was refused; nothing applied
    found = asyncio.run(fake.get(cluster.SERVICE, "chat", "team"))
    assert found is not None and found["spec"]["ports"] == [{"port": 1234}]


def test_a_taken_name_that_is_ours_is_applied() -> None:
    fake = FakeCluster(_service("u1"))
    written, taken = asyncio.run(child_writes.put(make_context(fake), _service("u1"), None, "chat", "u1"))
    assert taken is None and written is not None
    assert fake.writes == [("apply", "Service", "chat")]


def _managed(*entries: tuple[str, str]) -> dict[str, Any]:
    fields = [{"manager": m, "operation": op} for m, op in entries]
    return {"metadata": {"managedFields": fields}}


def test_a_posts_update_entry_is_handed_to_the_apply() -> None:
    assert child_writes.handover(_managed(("kube-controller-manager", "Update"))) is None
    assert child_writes.handover(_managed((MANAGER, "Apply"))) is None
    patch = child_writes.handover(_managed(("kubectl", "Update"), (MANAGER, "Update")))
    assert patch is not None and patch[-1] == {
        "op": "replace",
        "path": "/metadata/managedFields/1/operation",
        "value": "Apply",
    }
    assert {"op": "test", "path": "/metadata/managedFields/1/manager", "value": MANAGER} in patch
    both = child_writes.handover(_managed((MANAGER, "Apply"), (MANAGER, "Update")))
    assert both is not None and both[-1] == {"op": "remove", "path": "/metadata/managedFields/1"}
