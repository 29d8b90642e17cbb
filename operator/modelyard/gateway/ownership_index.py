"""Served-name ownership kept current one object at a time, for :mod:`.kube_discovery`.

The rule (:func:`modelyard.api.served_names.decide`) reads every endpoint and entry at once:
one endpoint created earlier than the others can change who owns a name, and with it the
verdict of every endpoint of that name and of every fallback to it. But what changes often
(an endpoint's status, its pods, an entry's runtime) leaves the facts the rule reads
unchanged. So this index keeps each object's facts and claim, applies the rule again only
when one of them changed, and then names the endpoints whose verdict changed, so that only
those are routed again.
"""

from __future__ import annotations

from modelyard import api
from modelyard.api import served_names


class OwnershipIndex:
    """The facts and claims the ownership rule reads, and its last answer.

    When facts changed, the rule is applied again only to the served names they touch: a name's
    owner depends only on the endpoints serving it and the claims (all of them, few); an
    endpoint's verdict on its own name's owner, the claim on its entry, and the owners of its
    fallback names. So the rule runs over the endpoints of the touched names, of the names the
    affected endpoints serve or fall back to, and its answer is kept for the touched names and
    the affected endpoints only. The tests check it equals the rule over everything.
    """

    def __init__(self) -> None:
        self.ownership = served_names.Ownership({}, {})
        self._facts: dict[str, served_names.EndpointFacts | None] = {}
        self._claims: dict[str, served_names.EntryClaim | None] = {}
        self._model_of: dict[str, str] = {}
        self._deploying: dict[str, set[str]] = {}
        self._serving: dict[str, set[str]] = {}
        """Served name -> the endpoints serving it."""
        self._falling_back: dict[str, set[str]] = {}
        """Served name -> the endpoints falling back to it."""
        self._touched: set[str] = set()
        """Served names whose owner may have changed since the rule last ran."""
        self._gone: set[str] = set()
        self._stale = True

    def entry(self, name: str, entry: api.ModelEntry | None) -> None:
        """Take the entry ``name`` as it is now (None: gone, or it does not validate)."""
        claim = served_names.claim_of(entry) if entry is not None else None
        before = self._claims.pop(name, None)
        if entry is not None:
            self._claims[name] = claim
        if claim != before:
            self._stale = True
            self._touched.update(c.served_name for c in (claim, before) if c is not None)
            for key in self._deploying.get(name, ()):  # a claim on the entry may put them in conflict
                facts = self._facts.get(key)
                if facts is not None:
                    self._touched.add(facts.served_name)

    def endpoint(
        self, key: str, endpoint: api.ModelEndpoint | None, entry: api.ModelEntry | None, created: str | None
    ) -> None:
        """Take the endpoint ``key`` as it is now (None: gone, or it does not validate), with the
        entry it deploys."""
        _drop(self._deploying, self._model_of.pop(key, None), key)
        facts = None
        if endpoint is not None:
            self._model_of[key] = endpoint.spec.model
            self._deploying.setdefault(endpoint.spec.model, set()).add(key)
            facts = served_names.facts_of(endpoint, entry, created)
        before = self._facts.pop(key, None)
        if endpoint is not None:
            self._facts[key] = facts
        if facts == before:
            return
        self._stale = True
        for old in (before,) if before is not None else ():
            self._touched.add(old.served_name)
            _drop(self._serving, old.served_name, key)
            for name in old.fallback:
                _drop(self._falling_back, name, key)
        for new in (facts,) if facts is not None else ():
            self._touched.add(new.served_name)
            self._serving.setdefault(new.served_name, set()).add(key)
            for name in new.fallback:
                self._falling_back.setdefault(name, set()).add(key)
        if facts is None:
            self._gone.add(key)

    def deploying(self, entry: str) -> set[str]:
        """The endpoints that deploy the entry (their served name and runtime may come from it)."""
        return set(self._deploying.get(entry, ()))

    def known(self) -> tuple[set[str], set[str]]:
        """The endpoints and entries taken so far."""
        return set(self._facts), set(self._claims)

    def decide(self, force: bool = False) -> tuple[set[str], bool]:
        """Apply the rule again if a fact or claim changed (to everything with ``force``): the
        endpoints whose verdict changed, and whether any owner changed (API keys limited to
        namespaces reach the names those namespaces own)."""
        if not (self._stale or force):
            return set(), False
        before = self.ownership
        claims = [c for c in self._claims.values() if c is not None]
        if force:
            self.ownership = served_names.decide([f for f in self._facts.values() if f is not None], claims)
            affected = {f"{n[0]}/{n[1]}" for n in before.verdicts.keys() | self.ownership.verdicts.keys()}
            names = before.owners.keys() | self.ownership.owners.keys()
        else:
            self.ownership, affected, names = self._decide_touched(before, claims)
        self._stale, self._touched, self._gone = False, set(), set()
        changed = set()
        for key in affected:
            namespace, _, name = key.partition("/")
            if before.verdict(namespace, name) != self.ownership.verdict(namespace, name):
                changed.add(key)
        return changed, any(before.owners.get(n) != self.ownership.owners.get(n) for n in names)

    def _decide_touched(
        self, before: served_names.Ownership, claims: list[served_names.EntryClaim]
    ) -> tuple[served_names.Ownership, set[str], set[str]]:
        """The rule applied to the touched names only (see the class docstring)."""
        touched = self._touched
        affected = {k for n in touched for k in (*self._serving.get(n, ()), *self._falling_back.get(n, ()))}
        read = set(touched)
        for key in affected:
            fact = self._facts[key]
            assert fact is not None
            read.add(fact.served_name)
            read.update(fact.fallback)
        facts = [f for n in read for k in self._serving.get(n, ()) if (f := self._facts[k]) is not None]
        part = served_names.decide(facts, claims)
        owners = dict(before.owners)
        for name in touched:
            if name in part.owners:
                owners[name] = part.owners[name]
            else:
                owners.pop(name, None)
        verdicts = dict(before.verdicts)
        for key in self._gone:
            namespace, _, name = key.partition("/")
            verdicts.pop((namespace, name), None)
        for key in affected:
            fact = self._facts[key]
            assert fact is not None
            verdicts[fact.key] = part.verdicts[fact.key]
        return served_names.Ownership(owners, verdicts), affected | self._gone, touched


def _drop(index: dict[str, set[str]], name: str | None, key: str) -> None:
    if name is not None and name in index:
        index[name].discard(key)
        if not index[name]:
            del index[name]
