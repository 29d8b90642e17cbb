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
