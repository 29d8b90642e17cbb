"""Admission answers served-name ownership from what the watches told the operator
(:mod:`modelyard.controllers.admission`): no listing for a request it admits once the indices
are attached and the ownership index is filled; a denial is confirmed by a listing; before the
watches report every request lists. The index's reading finds the listing's words."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from fakecluster import FakeCluster, entry, make_context

from modelyard import api
from modelyard.api import served_names
from modelyard.controllers import (
    admission,
    admission_names,
    cluster,
    context,
    custom_watches,
    informer,
    model_entry,
)

ALICE_CREATED = "2026-01-01T00:00:01Z"
SQL = {"name": "sql", "uri": "pvc://adapters/sql"}


class CountingCluster(FakeCluster):
    """A fake cluster that counts its listings and reads by kind."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        super().__init__(*objects)
        self.lists: list[str] = []
        self.gets: list[str] = []

    async def get(self, kind: cluster.Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.gets.append(kind[1])
        return await super().get(kind, name, namespace)

    async def list(
        self, kind: cluster.Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.lists.append(kind[1])
        return await super().list(kind, namespace, label_selector)


def endpoint(namespace: str, name: str, created: str | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if created is not None:
        meta["creationTimestamp"] = created
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": meta,
        "spec": {"model": "qwen3", **spec},
    }


def fleet() -> CountingCluster:
    """alice came first with the served name ``chat`` (and an adapter ``sql``); the entry
    ``claimed`` keeps its served name ``platform-chat`` for namespace ``platform``."""
    return CountingCluster(
        entry("qwen3", category="text-llm"),
        entry("claimed", servedName="platform-chat", servingNamespaces=["platform"]),
        endpoint("alice", "chat", ALICE_CREATED, servedName="chat", adapters=[SQL]),
        endpoint("bob", "other", "2026-01-01T00:00:02Z", model="claimed"),
    )


def watching(fake: CountingCluster) -> context.Context:
    """A context whose watches have listed: the stores given to the informer, the ownership
    index filled from them (as :func:`custom_watches.fill_ownership` does when the listing at
    start failed)."""
    ctx = make_context(fake)
    for kind in (cluster.MODEL_ENTRY, cluster.MODEL_ENDPOINT):
        index: dict[Any, list[dict[str, Any]]] = {}
        for body in asyncio.run(fake.list(kind)):
            index.setdefault(informer.key_of(kind, body), []).append(informer.trim(body))
        ctx.informer.own(kind, index)
    custom_watches.fill_ownership(ctx)
    assert ctx.ownership.complete
    fake.lists.clear()
    return ctx


def denial(ctx: context.Context, body: dict[str, Any]) -> str:
    with pytest.raises(kopf.AdmissionError) as denied:
        asyncio.run(admission.validate_endpoint(ctx, body, []))
    return str(denied.value)


TAKEOVERS = [
    pytest.param(
        endpoint("mallory", "hijack", servedName="chat"), "belongs to namespace alice", id="served-name"
    ),
    pytest.param(
        endpoint("mallory", "claimed", model="claimed"), "may be deployed only from", id="entry-claim"
    ),
    pytest.param(
        endpoint("mallory", "sneak", servedName="mine", adapters=[SQL]),
        "spec.adapters[0].name: served name 'sql' belongs to namespace alice",
        id="adapter-owned",
    ),
    pytest.param(
        endpoint(
            "mallory", "shadow", servedName="mine2", adapters=[{"name": "chat", "uri": "pvc://adapters/chat"}]
        ),
        "spec.adapters[0].name: 'chat' is the served name of ModelEndpoint alice/chat",
        id="adapter-is-served-name",
    ),
    pytest.param(
        endpoint("mallory", "fall", servedName="mine3", fallback=["chat"]),
        "spec.fallback chat ignored",
        id="fallback",
    ),
]


@pytest.mark.parametrize(("body", "words"), TAKEOVERS)
def test_a_takeover_is_found_by_the_index_in_the_words_of_the_listing(
    body: dict[str, Any], words: str
) -> None:
    fake = fleet()
    ctx = watching(fake)
    endpoint_ = api.ModelEndpoint.model_validate(body)
    key = (endpoint_.namespace or "", endpoint_.name)
    model = asyncio.run(fake.get(cluster.MODEL_ENTRY, endpoint_.spec.model))
    entry_ = model_entry.parse(model) if model is not None else None
    names = [a.name for a in endpoint_.spec.adapters or ()]
    fact = served_names.facts_of(endpoint_, entry_, None)
    ownership = ctx.ownership.with_endpoint(key, fact, (endpoint_.spec.model, entry_), names)
    from_index = admission_names.ownership_problem(
        endpoint_, ownership, admission_names.served_by_others(ctx.ownership, key, names)
    )
    assert fake.lists == []
    from_listing = admission_names.ownership_problem(
        endpoint_, *asyncio.run(admission_names.listed(ctx, endpoint_, key, None))
    )
    assert from_index is not None and words in from_index
    assert from_index == from_listing


@pytest.mark.parametrize(("body", "words"), TAKEOVERS)
def test_a_takeover_is_denied_once_the_listing_confirms_it(body: dict[str, Any], words: str) -> None:
    listed = fleet()
    before = denial(make_context(listed), body)  # no watches yet: the API is listed
    assert listed.lists == ["ModelEntry", "ModelEndpoint"]
    watched = fleet()
    after = denial(watching(watched), body)
    assert watched.lists == ["ModelEntry", "ModelEndpoint"]  # the index found it, the listing confirmed it
    assert words in after
    assert after == before


def test_a_denial_the_index_is_behind_on_is_not_given() -> None:
    """alice left a moment ago (the API says so, the watch has not): mallory may have the name."""
    fake = fleet()
    ctx = watching(fake)
    asyncio.run(fake.delete(cluster.MODEL_ENDPOINT, "chat", "alice"))
    asyncio.run(admission.validate_endpoint(ctx, endpoint("mallory", "hijack", servedName="chat"), []))
    assert fake.lists == ["ModelEntry", "ModelEndpoint"]


def test_an_endpoint_that_takes_nobodys_name_is_admitted_without_a_listing() -> None:
    fake = fleet()
    ctx = watching(fake)
    warnings: list[str] = []
    asyncio.run(admission.validate_endpoint(ctx, endpoint("carol", "own", servedName="carols"), warnings))
    assert fake.lists == []
    again = endpoint("alice", "chat", ALICE_CREATED, servedName="chat", adapters=[SQL], replicas=2)
    asyncio.run(admission.validate_endpoint(ctx, again, warnings))  # the owner's own update
    assert fake.lists == []


def test_a_fresh_read_of_the_entry_counts_before_its_watch_event() -> None:
    """An entry the watch has not reported is read (a GET): a claim it was created with is
    found, though the ownership index has not heard of it."""
    fake = fleet()
    ctx = watching(fake)
    fresh = entry("fresh", servedName="fresh-chat", servingNamespaces=["platform"])
    fake.put(fresh)
    early = api.ModelEndpoint.model_validate(endpoint("mallory", "early", model="fresh"))
    key = ("mallory", "early")
    read = model_entry.parse(fresh)
    ownership = ctx.ownership.with_endpoint(key, served_names.facts_of(early, read, None), ("fresh", read))
    assert "ModelEntry fresh may be deployed only from namespaces platform" in str(
        ownership.verdict(*key).conflict
    )
    words = denial(ctx, endpoint("mallory", "early", model="fresh"))
    assert "ModelEntry fresh may be deployed only from namespaces platform" in words
    assert "ModelEntry" in fake.gets


def test_an_entry_the_watch_has_is_not_read_again() -> None:
    """The endpoint's own entry and its adapters' entries come from the index: an admitted
    endpoint costs no request (issue #22: the GET was one request per endpoint)."""
    fake = fleet()
    fake.put(entry("sql-lora", adapter={"baseModel": "qwen3", "uri": "pvc://adapters/sql-lora"}))
    ctx = watching(fake)
    served = endpoint("carol", "own", servedName="carols")
    with_adapter = endpoint(
        "carol", "lora", servedName="carol-lora", adapters=[{"name": "c-sql", "entry": "sql-lora"}]
    )
    warnings: list[str] = []
    for body in (served, with_adapter):
        asyncio.run(admission.validate_endpoint(ctx, body, warnings))
    assert (fake.gets, fake.lists, warnings) == ([], [], [])


def test_a_denial_by_an_entry_the_watch_is_behind_on_is_not_given() -> None:
    """The index still has the entry unable to serve; the API says it was fixed a moment ago:
    the endpoint is judged again from a fresh read and admitted."""
    fake = CountingCluster(entry("qwen3", category="text-llm", capabilities={"inference": False}))
    ctx = watching(fake)
    assert "cannot serve inference" in denial(ctx, endpoint("carol", "early", servedName="carols"))
    assert fake.gets == ["ModelEntry"]  # the denial stood: the API said the same
    fake.put(entry("qwen3", category="text-llm"))  # fixed; the watch has not said so yet
    fake.gets.clear()
    asyncio.run(admission.validate_endpoint(ctx, endpoint("carol", "early", servedName="carols"), []))
    assert fake.gets == ["ModelEntry"]


def test_a_claim_the_watch_is_behind_on_is_judged_from_the_listing() -> None:
    """The index still has the entry's servingNamespaces claim, given up a moment ago: the
    ownership denial is confirmed by a listing, which reads the entry as it is now."""
    fake = CountingCluster(entry("qwen3", category="text-llm", servingNamespaces=["platform"]))
    ctx = watching(fake)
    assert "may be deployed only from" in denial(ctx, endpoint("carol", "early", servedName="carols"))
    fake.put(entry("qwen3", category="text-llm"))
    fake.lists.clear()
    asyncio.run(admission.validate_endpoint(ctx, endpoint("carol", "early", servedName="carols"), []))
    assert fake.lists == ["ModelEntry", "ModelEndpoint"]


def test_an_entry_that_shuts_endpoints_out_is_warned_of_without_a_listing() -> None:
    claim = entry("qwen3", category="text-llm", servedName="chat", servingNamespaces=["platform"])
    listed = fleet()
    before: list[str] = []
    asyncio.run(admission.validate_entry(make_context(listed), claim, before))
    assert listed.lists == ["ModelEntry", "ModelEndpoint"]
    watched = fleet()
    after: list[str] = []
    asyncio.run(admission.validate_entry(watching(watched), claim, after))
    assert watched.lists == []
    shut_out = [w for w in after if "ServedNameConflict" in w]
    assert shut_out == [
        "spec.servingNamespaces: these ModelEndpoints will be in ServedNameConflict and stop serving: "
        "alice/chat"
    ]
    assert shut_out == [w for w in before if "ServedNameConflict" in w]


def test_without_attached_indices_every_request_lists() -> None:
    """A replica whose watches have not reported (or whose ownership index is not filled)
    checks against the API: nothing is admitted unchecked."""
    fake = fleet()
    ctx = make_context(fake)
    ctx.ownership.seed(
        asyncio.run(fake.list(cluster.MODEL_ENDPOINT)), asyncio.run(fake.list(cluster.MODEL_ENTRY))
    )
    fake.lists.clear()
    denial(ctx, endpoint("mallory", "hijack", servedName="chat"))  # filled, but no watch yet
    assert fake.lists == ["ModelEntry", "ModelEndpoint"]
