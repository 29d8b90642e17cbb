"""Served-name ownership kept current one change at a time, for the operator and the gateway.

:func:`modelyard.api.served_names.decide` applies the rule to every endpoint and entry at
once: right for one admission request, quadratic for a process that sees a fleet created one
endpoint at a time. The rule's answer for one served name, though, reads only the endpoints
serving that name and the claims on it; an endpoint's verdict reads only the claim on its
entry, the owner of its served name and the owners of its fallback names. So
:class:`LiveOwnership` keeps the facts indexed by name, and a change applies the rule again to
the names it touches and to the endpoints that read those names' owners; nothing else. The
tests check that after any sequence of changes it holds what :func:`decide` over everything
would answer.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from modelyard.api import served_names
from modelyard.api.served_names import EndpointFacts, EntryClaim, Owner, Verdict

Key = tuple[str, str]
T = TypeVar("T")

_NONE: Mapping[Any, Any] = types.MappingProxyType({})


class LiveOwnership:
    """Endpoint facts and entry claims as they are now, and the rule's answer for them.

    Record changes with :meth:`endpoint` and :meth:`entry`, then :meth:`settle`: it applies
    the rule to what they touched and says what moved. :attr:`ownership` is a live view of
    the answer (its mappings change in place at each :meth:`settle`)."""

    def __init__(self) -> None:
        self._facts: dict[Key, EndpointFacts] = {}
        self._claims: dict[str, EntryClaim] = {}
        self._serving: dict[str, set[Key]] = {}
        """Served name (an endpoint's own or an adapter's) -> the endpoints serving it."""
        self._falling_back: dict[str, set[Key]] = {}
        """Served name -> the endpoints whose spec.fallback names it."""
        self._deploying: dict[str, set[Key]] = {}
        """Entry -> the endpoints deploying it (a claim on it may put them in conflict)."""
        self._claiming: dict[str, set[str]] = {}
        """Served name -> the entries claiming it."""
        self._owners: dict[str, Owner] = {}
        self._verdicts: dict[Key, Verdict] = {}
        self.ownership = served_names.Ownership(self._owners, self._verdicts)
        self._touched: set[str] = set()
        """Served names whose owner may have moved since the last settle."""
        self._moved: set[Key] = set()
        """Endpoints whose own facts, or the claim on whose entry, moved since the last settle."""

    def endpoint(self, key: Key, fact: EndpointFacts | None) -> None:
        """Take the endpoint ``key`` as it is now (None: gone, or its served name is unknown)."""
        before = self._facts.pop(key, None)
        if fact is not None:
            self._facts[key] = fact
        if fact == before:
            return
        for old in (before,) if before is not None else ():
            _drop(self._deploying, old.model, key)
            for name in old.names:
                _drop(self._serving, name, key)
            for name in old.fallback:
                _drop(self._falling_back, name, key)
            self._touched.update(old.names)
        for new in (fact,) if fact is not None else ():
            self._deploying.setdefault(new.model, set()).add(key)
            for name in new.names:
                self._serving.setdefault(name, set()).add(key)
            for name in new.fallback:
                self._falling_back.setdefault(name, set()).add(key)
            self._touched.update(new.names)
        self._moved.add(key)

    def entry(self, name: str, claim: EntryClaim | None) -> None:
        """Take the entry ``name``'s claim as it is now (None: it claims nothing, or is gone)."""
        before = self._claims.pop(name, None)
        if claim is not None:
            self._claims[name] = claim
        if claim == before:
            return
        if before is not None:
            _drop(self._claiming, before.served_name, name)
            self._touched.add(before.served_name)
        if claim is not None:
            self._claiming.setdefault(claim.served_name, set()).add(name)
            self._touched.add(claim.served_name)
        for key in self._deploying.get(name, ()):  # rule 1a: they may be in conflict now, or no longer
            self._moved.add(key)
            self._touched.update(self._facts[key].names)

    def facts(self, key: Key) -> EndpointFacts | None:
        return self._facts.get(key)

    def claim(self, entry: str) -> EntryClaim | None:
        return self._claims.get(entry)

    def serving(self, name: str) -> list[EndpointFacts]:
        """The endpoints serving ``name`` (as their own served name or an adapter's)."""
        return [self._facts[key] for key in self._serving.get(name, ())]

    def deploying(self, entry: str) -> frozenset[Key]:
        return frozenset(self._deploying.get(entry, ()))

    def what_if(
        self,
        keys: Iterable[Key],
        endpoints: Mapping[Key, EndpointFacts | None] = _NONE,
        claims: Mapping[str, EntryClaim | None] = _NONE,
        names: Iterable[str] = (),
    ) -> served_names.Ownership:
        """The rule's answer if ``endpoints`` and ``claims`` were as given (the others as they
        are now), recording nothing: the verdicts of ``keys``, the owners of the names they
        read (their served names, their adapters', their fallbacks) and of ``names``, and
        nothing else.

        Those read only the endpoints serving those names and the claims on them and on those
        endpoints' entries (the module docstring), so :func:`served_names.decide` over just
        that part answers them as it would over everything."""
        keys = set(keys)

        def fact_of(key: Key) -> EndpointFacts | None:
            return endpoints[key] if key in endpoints else self._facts.get(key)

        def claim_of(entry: str) -> EntryClaim | None:
            return claims[entry] if entry in claims else self._claims.get(entry)

        wanted = {key: fact for key in keys if (fact := fact_of(key)) is not None}
        names = {*names, *(name for fact in wanted.values() for name in (*fact.names, *fact.fallback))}
        candidates = {key for name in names for key in self._serving.get(name, ())} | set(endpoints)
        facts = dict(wanted)
        for key in candidates - keys:
            fact = fact_of(key)
            if fact is not None and not names.isdisjoint(fact.names):
                facts[key] = fact
        entries = {e for name in names for e in self._claiming.get(name, ())} | set(claims)
        entries.update(fact.model for fact in facts.values())
        found = (claim_of(entry) for entry in entries)
        answer = served_names.decide(facts.values(), (c for c in found if c is not None))
        return served_names.Ownership(
            {name: answer.owners[name] for name in names if name in answer.owners},
            {key: answer.verdicts[key] for key in wanted},
        )

    def touch_all(self) -> None:
        """Apply the rule to everything at the next settle (after a relist, say)."""
        self._touched.update(self._serving, self._claiming, self._owners)
        self._moved.update(self._facts, self._verdicts)

    def settle(self) -> tuple[set[Key], set[str]]:
        """Apply the rule to what changed since the last settle: the endpoints whose verdict
        moved and the served names whose owner moved."""
        touched, moved = self._touched, self._moved
        self._touched, self._moved = set(), set()
        owners_moved = set()
        for name in touched:
            owner = self._owner(name)
            if owner != self._owners.get(name):
                owners_moved.add(name)
                if owner is None:
                    del self._owners[name]
                else:
                    self._owners[name] = owner
        for name in owners_moved:
            moved.update(self._serving.get(name, ()), self._falling_back.get(name, ()))
        verdicts_moved = set()
        for key in moved:
            fact = self._facts.get(key)
            verdict = self._verdict(fact) if fact is not None else None
            if verdict != self._verdicts.get(key):
                verdicts_moved.add(key)
                if verdict is None:
                    del self._verdicts[key]
                else:
                    self._verdicts[key] = verdict
        return verdicts_moved, owners_moved

    def _conflict(self, fact: EndpointFacts) -> tuple[str, str] | None:
        return served_names.conflict_of(fact, self._claims.get(fact.model))

    def _owner(self, name: str) -> Owner | None:
        claiming = self._claiming.get(name)
        if claiming:
            return served_names.platform_owner(name, (self._claims[e] for e in sorted(claiming)))
        serving = [self._facts[key] for key in self._serving.get(name, ())]
        eligible = [fact for fact in serving if self._conflict(fact) is None]
        if not eligible:
            return None
        return served_names.first_come_owner(name, min(eligible, key=EndpointFacts.seniority), serving)

    def _verdict(self, fact: EndpointFacts) -> Verdict:
        return served_names.verdict_of(fact, self._conflict(fact), self._owners)


def _drop(index: dict[str, set[T]], name: str, member: T) -> None:
    found = index.get(name)
    if found is not None:
        found.discard(member)
        if not found:
            del index[name]
