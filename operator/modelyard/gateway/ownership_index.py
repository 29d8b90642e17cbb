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
    """The facts and claims the ownership rule reads, and its last answer."""

    def __init__(self) -> None:
        self.ownership = served_names.Ownership({}, {})
        self._facts: dict[str, served_names.EndpointFacts | None] = {}
        self._claims: dict[str, served_names.EntryClaim | None] = {}
        self._model_of: dict[str, str] = {}
        self._deploying: dict[str, set[str]] = {}
        self._stale = True

    def entry(self, name: str, entry: api.ModelEntry | None) -> None:
        """Take the entry ``name`` as it is now (None: gone, or it does not validate)."""
        claim = served_names.claim_of(entry) if entry is not None else None
        before = self._claims.pop(name, None)
        if entry is not None:
            self._claims[name] = claim
        self._stale |= claim != before

    def endpoint(
        self, key: str, endpoint: api.ModelEndpoint | None, entry: api.ModelEntry | None, created: str | None
    ) -> None:
        """Take the endpoint ``key`` as it is now (None: gone, or it does not validate), with the
        entry it deploys."""
        model = self._model_of.pop(key, None)
        if model is not None:
            self._deploying[model].discard(key)
            if not self._deploying[model]:
                del self._deploying[model]
        before = self._facts.pop(key, None)
        if endpoint is None:
            self._stale |= before is not None
            return
        self._model_of[key] = endpoint.spec.model
        self._deploying.setdefault(endpoint.spec.model, set()).add(key)
        facts = served_names.facts_of(endpoint, entry, created)
        self._facts[key] = facts
        self._stale |= facts != before

    def deploying(self, entry: str) -> set[str]:
        """The endpoints that deploy the entry (their served name and runtime may come from it)."""
        return set(self._deploying.get(entry, ()))

    def known(self) -> tuple[set[str], set[str]]:
        """The endpoints and entries taken so far."""
        return set(self._facts), set(self._claims)

    def decide(self, force: bool = False) -> tuple[set[str], bool]:
        """Apply the rule again if a fact or claim changed (or ``force``): the endpoints whose
        verdict changed, and whether any owner changed (API keys limited to namespaces reach
        the names those namespaces own)."""
        if not (self._stale or force):
            return set(), False
        self._stale = False
        before = self.ownership
        facts = [f for f in self._facts.values() if f is not None]
        self.ownership = served_names.decide(facts, [c for c in self._claims.values() if c is not None])
        changed = {
            f"{namespace}/{name}"
            for namespace, name in before.verdicts.keys() | self.ownership.verdicts.keys()
            if before.verdict(namespace, name) != self.ownership.verdict(namespace, name)
        }
        return changed, before.owners != self.ownership.owners
