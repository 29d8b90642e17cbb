"""A child is the operator's only when its controller owner reference has the custom resource's
uid; anything else of the name is a conflict that names the object and whose it is."""

from __future__ import annotations

from typing import Any

from modelyard.builders import children, labels


def _obj(*refs: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "chat", "namespace": "team-a"}
    if refs:
        meta["ownerReferences"] = list(refs)
    return {"kind": "Deployment", "metadata": meta}


def test_absent_or_controlled_by_this_uid_is_the_operators() -> None:
    assert children.conflict(None, "ModelEndpoint", "chat", "u1") is None
    mine = _obj(labels.owner_reference("ModelEndpoint", "chat", "u1"))
    assert children.owned(mine, "u1")
    assert children.conflict(mine, "ModelEndpoint", "chat", "u1") is None


def test_an_unowned_object_is_a_conflict_naming_it() -> None:
    message = children.conflict(_obj(), "ModelEndpoint", "chat", "u1")
    assert message is not None
    assert message.startswith("Deployment team-a/chat already exists and is not this ModelEndpoint's")
    assert "leaves it untouched" in message


def test_an_owner_reference_that_is_not_the_controller_does_not_make_it_ours() -> None:
    ref = {**labels.owner_reference("ModelEndpoint", "chat", "u1"), "controller": False}
    assert not children.owned(_obj(ref), "u1")
    assert children.conflict(_obj(ref), "ModelEndpoint", "chat", "u1") is not None


def test_a_child_of_an_earlier_resource_of_the_name_waits_for_the_garbage_collector() -> None:
    stale = _obj(labels.owner_reference("ModelEndpoint", "chat", "old-uid"))
    message = children.conflict(stale, "ModelEndpoint", "chat", "u1") or ""
    assert "earlier ModelEndpoint of this name (uid old-uid)" in message and "garbage collector" in message


def test_a_child_of_something_else_names_its_controller() -> None:
    other = _obj(
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "x", "controller": True}
    )
    assert "is controlled by ReplicaSet web" in (
        children.conflict(other, "ModelEndpoint", "chat", "u1") or ""
    )
