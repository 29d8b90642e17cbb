"""The operator's ownership index: which endpoints to reconcile again when one object changes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard import api
from modelyard.api import served_names
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


ENTRY_NAMES = ("e1", "e2")
SERVED = ("x", "y")
NAMESPACES = ("a", "b")


@st.composite
def catalog_and_fleet(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    entries = []
    for name in draw(st.lists(st.sampled_from(ENTRY_NAMES), unique=True)):
        entries.append(draw(any_entry(name)))
    endpoints = []
    for i, (ns, model) in enumerate(
        draw(st.lists(st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(ENTRY_NAMES)), max_size=6))
    ):
        spec: dict[str, Any] = {"model": model}
        served = draw(st.sampled_from((None, *SERVED)))
        if served is not None:
            spec["servedName"] = served
        body = endpoint(ns, f"ep{i}", f"2026-01-01T00:00:0{draw(st.integers(1, 3))}Z", "-", **spec)
        if served is None:
            del body["spec"]["servedName"]
        endpoints.append(body)
    return entries, endpoints


def any_entry(name: str) -> st.SearchStrategy[dict[str, Any]]:
    serving = st.sampled_from((None, ["a"], ["b"], ["a", "b"]))
    return st.tuples(st.sampled_from(SERVED), serving).map(lambda found: entry(name, *found))


@settings(max_examples=300, deadline=None)
@given(catalog_and_fleet(), st.data())
def test_with_entry_says_what_recording_the_entry_would(
    objects: tuple[list[dict[str, Any]], list[dict[str, Any]]], data: st.DataObject
) -> None:
    entries, endpoints = objects
    index = ownership.Index()
    index.seed(endpoints, entries)
    body = data.draw(st.sampled_from(ENTRY_NAMES).flatmap(any_entry))
    parsed = api.ModelEntry.model_validate(body)
    before, after = index.with_entry(parsed)
    now = {key: index.verdict(*key) for key in index.decide().verdicts}
    index.entry_event(body)  # what recording it answers
    then = index.decide()
    moved = {k for k in now.keys() | then.verdicts.keys() if now.get(k) != then.verdicts.get(k)}
    assert moved <= after.verdicts.keys() | before.verdicts.keys()
    for key in after.verdicts.keys() | before.verdicts.keys():
        assert before.verdict(*key) == now.get(key, served_names.Verdict())
        assert after.verdict(*key) == then.verdict(*key)


def test_with_entry_moves_the_name_its_shut_out_endpoint_owned() -> None:
    """The entry's new claim puts b's endpoint (the oldest serving ``y``) in conflict, so ``y``
    passes to a's endpoint: both verdicts move."""
    index = ownership.Index()
    first = endpoint("b", "d", "2026-01-01T00:00:01Z", "y", model="e1")
    later = endpoint("a", "f", "2026-01-01T00:00:02Z", "y", model="e2")
    index.seed([first, later], [entry("e1", "x", None), entry("e2", "z", None)])
    assert index.verdict("a", "f").conflict is not None
    before, after = index.with_entry(api.ModelEntry.model_validate(entry("e1", "x", ["a"])))
    assert before.verdict("b", "d").conflict is None and after.verdict("b", "d").conflict is not None
    assert ("a", "f") in after.verdicts and after.verdict("a", "f").conflict is None
