"""The operator's ownership index: which endpoints to reconcile again when one object changes."""

from __future__ import annotations

from typing import Any

from modelyard.controllers import ownership


def endpoint(ns: str, name: str, created: str, served: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
        "spec": {"model": "m", "servedName": served, **spec},
        "status": {"phase": "Ready"},
    }


def entry(name: str, served: str, serving: list[str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": {"provider": "upstream"}, "servedName": served}
    if serving is not None:
        spec["servingNamespaces"] = serving
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEntry",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_the_next_oldest_takes_the_name_when_the_owner_is_deleted() -> None:
    index = ownership.Index()
    index.seed([endpoint("alice", "chat", "2026-01-01T00:00:01Z", "chat")], [])
    assert index.endpoint_event(endpoint("mallory", "hijack", "2026-01-01T00:00:02Z", "chat")) == {
        ("mallory", "hijack")
    }
    assert index.verdict("mallory", "hijack").conflict is not None
    moved = index.endpoint_event(endpoint("alice", "chat", "2026-01-01T00:00:01Z", "chat"), deleted=True)
    assert moved == {("alice", "chat"), ("mallory", "hijack")}
    assert index.verdict("mallory", "hijack").conflict is None


def test_a_status_change_moves_nobody_and_an_entry_claim_does() -> None:
    index = ownership.Index()
    first = endpoint("a", "x", "2026-01-01T00:00:01Z", "chat")
    second = endpoint("b", "y", "2026-01-01T00:00:02Z", "other")
    index.seed([first, second], [])
    again = endpoint("a", "x", "2026-01-01T00:00:01Z", "chat")
    again["status"] = {"phase": "Degraded"}
    assert index.endpoint_event(again) == set()
    assert index.entry_event(entry("platform", "other", ["a"])) == {("b", "y")}
    assert index.entry_event(entry("platform", "other", ["a"]), deleted=True) == {("b", "y")}


def test_an_object_being_deleted_no_longer_owns() -> None:
    index = ownership.Index()
    gone = endpoint("alice", "chat", "2026-01-01T00:00:01Z", "chat")
    index.seed([gone, endpoint("bob", "chat", "2026-01-01T00:00:02Z", "chat")], [])
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    assert ("bob", "chat") in index.endpoint_event(gone)
    assert index.verdict("bob", "chat").conflict is None


def test_watch_bodies_become_plain_data() -> None:
    class View(dict[str, Any]):
        pass

    assert ownership.plain(View(a=View(b=[View(c=1)]))) == {"a": {"b": [{"c": 1}]}}


def test_an_entry_change_moves_the_endpoints_that_take_their_served_name_from_it() -> None:
    index = ownership.Index()
    index.seed(
        [endpoint("alice", "chat", "2026-01-01T00:00:01Z", "chat")],
        [entry("later", "other", None)],
    )
    served_by_entry = endpoint("bob", "b", "2026-01-01T00:00:02Z", "")
    served_by_entry["spec"] = {"model": "later"}  # no servedName: the entry's
    assert index.endpoint_event(served_by_entry) == {("bob", "b")}  # first seen
    assert index.verdict("bob", "b").conflict is None
    assert index.entry_event(entry("later", "chat", None)) == {("bob", "b")}  # now alice's name
    assert "namespace alice" in (index.verdict("bob", "b").conflict or "")
    status_only = entry("later", "chat", None)
    status_only["status"] = {"phase": "Valid"}
    assert index.entry_event(status_only) == set()
    assert index.entry_event(entry("later", "other", None)) == {("bob", "b")}
    assert index.verdict("bob", "b").conflict is None


def test_events_that_change_nothing_the_rule_reads_keep_the_decision() -> None:
    index = ownership.Index()
    index.seed([endpoint("a", "x", "2026-01-01T00:00:01Z", "chat")], [entry("m", "chat", None)])
    decided = dict(index.decide().owners), dict(index.decide().verdicts)
    labelled = endpoint("a", "x", "2026-01-01T00:00:01Z", "chat")
    labelled["metadata"]["labels"] = {"team": "red"}
    labelled["status"] = {"phase": "Degraded"}
    listed = entry("m", "chat", None)
    listed["status"] = {"endpoints": [{"namespace": "a", "name": "x", "ready": True}]}
    assert index.endpoint_event(labelled) == set() and index.entry_event(listed) == set()
    assert (dict(index.decide().owners), dict(index.decide().verdicts)) == decided
    assert index.entry_event(entry("unused", "elsewhere", None)) == set()  # no endpoint, no claim
    assert (dict(index.decide().owners), dict(index.decide().verdicts)) == decided
