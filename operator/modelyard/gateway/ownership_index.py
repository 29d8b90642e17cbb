"""Served-name ownership kept current one object at a time, for :mod:`.kube_discovery`.

The rule (:func:`modelyard.api.served_names.decide`) reads every endpoint and entry at once:
one endpoint created earlier than the others can change who owns a name, and with it the
verdict of every endpoint of that name and of every fallback to it. But what changes often
(an endpoint's status, its pods, an entry's runtime) leaves the facts the rule reads
unchanged. So this index keeps each object's facts and claim in a
:class:`~modelyard.api.live_ownership.LiveOwnership`, which applies the rule again only to the
names a changed fact touches, and names the endpoints whose verdict changed, so that only
those are routed again.
"""

from __future__ import annotations

from modelyard import api
from modelyard.api import live_ownership, served_names


class OwnershipIndex:
    """The facts and claims the ownership rule reads, and its answer (:attr:`ownership`, a
    live view that changes at each :meth:`decide`). Endpoints are keyed ``namespace/name``."""

    def __init__(self) -> None:
        self._live = live_ownership.LiveOwnership()
        self.ownership: served_names.Ownership = self._live.ownership
        self._entries: set[str] = set()
        self._deploying: dict[str, set[str]] = {}
        self._model_of: dict[str, str] = {}

    def entry(self, name: str, entry: api.ModelEntry | None) -> None:
        """Take the entry ``name`` as it is now (None: gone, or it does not validate)."""
        (self._entries.add if entry is not None else self._entries.discard)(name)
        self._live.entry(name, served_names.claim_of(entry) if entry is not None else None)

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
        facts = None
        if endpoint is not None:
            self._model_of[key] = endpoint.spec.model
            self._deploying.setdefault(endpoint.spec.model, set()).add(key)
            facts = served_names.facts_of(endpoint, entry, created)
        namespace, _, name = key.partition("/")
        self._live.endpoint((namespace, name), facts)

    def deploying(self, entry: str) -> set[str]:
        """The endpoints that deploy the entry (their served name and runtime may come from it)."""
        return set(self._deploying.get(entry, ()))

    def known(self) -> tuple[set[str], set[str]]:
        """The endpoints and entries taken so far."""
        return set(self._model_of), set(self._entries)

    def decide(self, force: bool = False) -> tuple[set[str], bool]:
        """Apply the rule to what changed (to everything with ``force``): the endpoints whose
        verdict changed, and whether any owner changed (API keys limited to namespaces reach
        the names those namespaces own)."""
        if force:
            self._live.touch_all()
        verdicts, owners = self._live.settle()
        return {f"{namespace}/{name}" for namespace, name in verdicts}, bool(owners)
