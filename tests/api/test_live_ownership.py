"""LiveOwnership (api/live_ownership.py): after any sequence of changes it holds what the rule
over everything (served_names.decide) answers, and it names exactly what moved."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.api import served_names as sn
from modelyard.api.live_ownership import LiveOwnership

NAMESPACES = ("a", "b", "c")
NAMES = ("x", "y", "z")
ENTRIES = ("e1", "e2")
TIMES = ("", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z")

keys = st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(("p", "q")))
names = st.lists(st.sampled_from(NAMES), max_size=2, unique=True).map(tuple)
few_namespaces = st.lists(st.sampled_from(NAMESPACES), max_size=2, unique=True).map(tuple)


@st.composite
def facts(draw: st.DrawFn) -> tuple[tuple[str, str], sn.EndpointFacts | None]:
    key = draw(keys)
    if draw(st.booleans()) and draw(st.booleans()):
        return key, None  # deleted
    return key, sn.EndpointFacts(
        namespace=key[0],
        name=key[1],
        created=draw(st.sampled_from(TIMES)),
        served_name=draw(st.sampled_from(NAMES)),
        model=draw(st.sampled_from(ENTRIES)),
        share_with=draw(few_namespaces),
        fallback=draw(names),
        adapters=draw(names),
    )


@st.composite
def claims(draw: st.DrawFn) -> tuple[str, sn.EntryClaim | None]:
    entry = draw(st.sampled_from(ENTRIES))
    if draw(st.booleans()):
        return entry, None
    return entry, sn.EntryClaim(entry, draw(st.sampled_from(NAMES)), frozenset(draw(few_namespaces)))


changes = st.lists(st.tuples(st.one_of(facts(), claims()), st.booleans()), min_size=1, max_size=30)


@settings(max_examples=400, deadline=None)
@given(changes)
def test_it_holds_what_the_rule_over_everything_answers_and_names_what_moved(
    steps: list[tuple[tuple[object, object], bool]],
) -> None:
    live = LiveOwnership()
    endpoints: dict[tuple[str, str], sn.EndpointFacts] = {}
    entry_claims: dict[str, sn.EntryClaim] = {}
    last = sn.decide([], [])
    for (what, value), settle_now in steps:
        if isinstance(what, tuple):
            live.endpoint(what, value)  # type: ignore[arg-type]
            endpoints.pop(what, None)
            if value is not None:
                endpoints[what] = value  # type: ignore[assignment]
        else:
            live.entry(what, value)  # type: ignore[arg-type]
            entry_claims.pop(str(what), None)
            if value is not None:
                entry_claims[str(what)] = value  # type: ignore[assignment]
        if not settle_now:
            continue
        verdicts_moved, owners_moved = live.settle()
        now = sn.decide(endpoints.values(), entry_claims.values())
        assert dict(live.ownership.owners) == dict(now.owners)
        assert dict(live.ownership.verdicts) == dict(now.verdicts)
        assert verdicts_moved == {
            k
            for k in last.verdicts.keys() | now.verdicts.keys()
            if last.verdicts.get(k) != now.verdicts.get(k)
        }
        assert owners_moved == {
            n for n in last.owners.keys() | now.owners.keys() if last.owners.get(n) != now.owners.get(n)
        }
        last = now


def test_an_adapters_name_passes_to_the_next_oldest_when_its_first_server_leaves() -> None:
    live = LiveOwnership()
    alice = sn.EndpointFacts("alice", "base", "2026-01-01T00:00:01Z", "base-a", "m", adapters=("sql",))
    bob = sn.EndpointFacts("bob", "base", "2026-01-01T00:00:02Z", "base-b", "m", adapters=("sql",))
    live.endpoint(alice.key, alice)
    live.endpoint(bob.key, bob)
    live.settle()
    assert not live.ownership.may_serve("bob", "sql")
    live.endpoint(alice.key, None)
    assert live.settle() == ({alice.key}, {"sql", "base-a"})
    assert live.ownership.may_serve("bob", "sql")


def test_a_change_nobody_reads_moves_nothing() -> None:
    live = LiveOwnership()
    fact = sn.EndpointFacts("a", "x", "2026-01-01T00:00:01Z", "chat", "m")
    live.endpoint(fact.key, fact)
    live.settle()
    live.endpoint(fact.key, sn.EndpointFacts("a", "x", "2026-01-01T00:00:01Z", "chat", "m"))
    live.entry("unused", None)
    assert live.settle() == (set(), set())


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(facts(), claims()), max_size=20),
    st.lists(facts(), max_size=2),
    st.lists(claims(), max_size=1),
    st.lists(keys, max_size=3),
    st.lists(st.sampled_from(NAMES), max_size=2),
)
def test_what_if_answers_what_the_rule_over_everything_would_and_records_nothing(
    recorded: list[tuple[object, object]],
    endpoint_changes: list[tuple[tuple[str, str], sn.EndpointFacts | None]],
    claim_changes: list[tuple[str, sn.EntryClaim | None]],
    asked: list[tuple[str, str]],
    extra_names: list[str],
) -> None:
    live = LiveOwnership()
    endpoints: dict[tuple[str, str], sn.EndpointFacts | None] = {}
    entry_claims: dict[str, sn.EntryClaim | None] = {}
    for what, value in recorded:
        if isinstance(what, tuple):
            live.endpoint(what, value)  # type: ignore[arg-type]
            endpoints[what] = value  # type: ignore[assignment]
        else:
            live.entry(str(what), value)  # type: ignore[arg-type]
            entry_claims[str(what)] = value  # type: ignore[assignment]
    live.settle()
    now = sn.decide([f for f in endpoints.values() if f], [c for c in entry_claims.values() if c])
    changed_endpoints, changed_claims = dict(endpoint_changes), dict(claim_changes)
    keys_asked = {*asked, *changed_endpoints}
    answer = live.what_if(keys_asked, changed_endpoints, changed_claims, extra_names)
    after = {**endpoints, **changed_endpoints}
    whole = sn.decide(
        [f for f in after.values() if f], [c for c in {**entry_claims, **changed_claims}.values() if c]
    )
    assert dict(answer.verdicts) == {k: whole.verdicts[k] for k in keys_asked if k in whole.verdicts}
    read = {*extra_names, *(n for k in keys_asked if (f := after.get(k)) for n in (*f.names, *f.fallback))}
    assert dict(answer.owners) == {n: whole.owners[n] for n in read if n in whole.owners}
    assert dict(live.ownership.owners) == dict(now.owners)  # nothing recorded
    assert dict(live.ownership.verdicts) == dict(now.verdicts)
