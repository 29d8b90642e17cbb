"""The operator's view of served-name ownership, kept from its watches (no request per reconcile).

Every ModelEndpoint and ModelEntry event updates the index; the rule itself is
:func:`modelyard.api.served_names.decide`, kept current by
:class:`modelyard.api.live_ownership.LiveOwnership` (a change costs the names it touches, not
a decision over the fleet). When an event changes another endpoint's verdict
(the owner's endpoint is deleted, an entry claims a name, an owner shares it), the index
returns that endpoint so the caller can reconcile it: the next oldest takes the name, a
newly shut-out endpoint reports ServedNameConflict.

The admission webhook asks it too (:mod:`.admission`): what the rule would answer if one
endpoint or one entry were as a request says (:meth:`Index.with_endpoint`,
:meth:`Index.with_entry`), without recording it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable
from typing import Any

import pydantic

from modelyard import api
from modelyard.api import live_ownership, served_names
from modelyard.registry import documents

log = logging.getLogger(__name__)

Key = tuple[str, str]


plain = documents.plain
"""A watch event's body (kopf hands out read-only mapping views) as plain dicts and lists."""


class Index:
    """What the rule reads of each endpoint and entry, and its answer kept current.

    Most events change nothing the rule reads (a status patch, a label): they are told apart
    by what the rule reads (an endpoint's spec and creation time, an entry's spec) and cost
    nothing more. A real change recomputes the facts it moves (an endpoint's, or those of the
    endpoints deploying a changed entry) and applies the rule to the names they touch."""

    def __init__(self) -> None:
        self._endpoints: dict[Key, _Endpoint] = {}
        """What the rule reads of each valid endpoint (not the parsed endpoint: a fleet has thousands)."""
        self._entries: dict[str, _Entry] = {}
        """What the rule reads of each valid entry (not the parsed entry: a catalog has thousands)."""
        self._by_model: dict[str, set[Key]] = {}
        self._marks: dict[tuple[str, Any], Any] = {}
        """What the rule read of each object when it was last recorded."""
        self._live = live_ownership.LiveOwnership()
        self.complete = False
        """Whether it has been filled from a listing (:meth:`seed`): before, it knows only what
        the watches have reported so far."""

    def seed(self, endpoints: Iterable[dict[str, Any]], entries: Iterable[dict[str, Any]]) -> set[Key]:
        """Fill from one listing (at start, before the watches report; or from the watches'
        indices when that listing failed); the endpoints whose verdict moved."""
        for body in entries:
            self._record_entry(body, deleted=False)
        for body in endpoints:
            self._record_endpoint(body, deleted=False)
        self.complete = True
        return self._live.settle()[0]

    def endpoint_event(self, body: dict[str, Any], deleted: bool = False) -> set[Key]:
        """Record an endpoint as the API server has it now; the endpoints whose verdict moved."""
        self._record_endpoint(body, deleted)
        return self._live.settle()[0]

    def entry_event(self, body: dict[str, Any], deleted: bool = False) -> set[Key]:
        self._record_entry(body, deleted)
        return self._live.settle()[0]

    def decide(self) -> served_names.Ownership:
        """The rule's answer now (a live view: it changes with the next event)."""
        return self._live.ownership

    def verdict(self, namespace: str, name: str) -> served_names.Verdict:
        return self._live.ownership.verdict(namespace, name)

    def serving(self, name: str) -> list[served_names.EndpointFacts]:
        """The endpoints serving ``name`` (their own served name or an adapter's), as recorded."""
        return self._live.serving(name)

    def with_endpoint(
        self,
        key: Key,
        fact: served_names.EndpointFacts | None,
        entry: tuple[str, api.ModelEntry | None],
        names: Iterable[str] = (),
    ) -> served_names.Ownership:
        """The rule's answer for endpoint ``key`` if its facts were ``fact`` and its entry
        (``entry``: its name and the entry as a fresh read has it, None: absent) were as given,
        everything else as recorded: its verdict and the owners of the names it reads and of
        ``names`` (:meth:`LiveOwnership.what_if`). Records nothing."""
        facts, claims = self._entry_as(*entry)
        return self._live.what_if([key], {**facts, key: fact}, claims, names)

    def with_entry(self, entry: api.ModelEntry) -> tuple[served_names.Ownership, served_names.Ownership]:
        """The verdicts ``entry`` (a new spec of an entry, or a new entry) could move, now and if
        it were recorded: the endpoints deploying it and those serving a name whose owner it
        may move. Records nothing."""
        facts, claims = self._entry_as(entry.name, entry)
        names = {claim.served_name for claim in (self._live.claim(entry.name), *claims.values()) if claim}
        deploying = self._live.deploying(entry.name) | facts.keys()
        for key in deploying:
            for fact in (self._live.facts(key), facts.get(key)):
                names.update(fact.names if fact is not None else ())
        keys = set(deploying).union(*({f.key for f in self._live.serving(n)} for n in names))
        now = self._live.ownership
        before = served_names.Ownership(now.owners, {k: now.verdicts[k] for k in keys if k in now.verdicts})
        return before, self._live.what_if(keys, facts, claims)

    # -- internals -------------------------------------------------------------------------

    def _entry_as(
        self, name: str, entry: api.ModelEntry | None
    ) -> tuple[dict[Key, served_names.EndpointFacts | None], dict[str, served_names.EntryClaim | None]]:
        """What would change if entry ``name`` were ``entry``: the facts of the endpoints that
        take their served name from it, and its claim (nothing when it is what is recorded)."""
        new = _Entry(served_names.entry_served_name(entry), served_names.claim_of(entry)) if entry else None
        if new == self._entries.get(name):
            return {}, {}
        facts: dict[Key, served_names.EndpointFacts | None] = {}
        for key in self._by_model.get(name, ()):
            found = self._endpoints[key]
            if not found.own_name:
                facts[key] = dataclasses.replace(found.base, served_name=new.served) if new else None
        return facts, {name: new.claim if new is not None else None}

    def _mark(self, kind: str, key: Any, mark: Any) -> bool:
        """Remember what the rule read of an object; False when it is what was read last."""
        if self._marks.get((kind, key), _ABSENT) == mark:
            return False
        if mark is _ABSENT:
            self._marks.pop((kind, key), None)
        else:
            self._marks[(kind, key)] = mark
        return True

    def _record_endpoint(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name")))
        gone = deleted or bool(meta.get("deletionTimestamp"))
        mark = _ABSENT if gone else _digest([body.get("spec"), meta.get("creationTimestamp")])
        if not self._mark("endpoint", key, mark):
            return
        self._drop_endpoint(key)
        if not gone:
            with contextlib.suppress(pydantic.ValidationError):  # unservable: its reconcile says why
                endpoint = api.ModelEndpoint.model_validate({k: v for k, v in body.items() if k != "status"})
                created = str(meta.get("creationTimestamp") or "")
                own = endpoint.spec.served_name
                base = served_names.facts_with(endpoint, own or "-", created)
                assert base is not None
                self._endpoints[key] = _Endpoint(base, bool(own))
                self._by_model.setdefault(endpoint.spec.model, set()).add(key)
        self._live.endpoint(key, self._facts_of(key))

    def _drop_endpoint(self, key: Key) -> None:
        found = self._endpoints.pop(key, None)
        if found is not None:
            keys = self._by_model.get(found.base.model)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_model[found.base.model]

    def _record_entry(self, body: dict[str, Any], deleted: bool) -> None:
        name = str((body.get("metadata") or {}).get("name"))
        if not self._mark("entry", name, _ABSENT if deleted else _digest(body.get("spec"))):
            return
        self._entries.pop(name, None)
        if not deleted:
            with contextlib.suppress(pydantic.ValidationError):  # an invalid entry serves nothing
                entry = api.ModelEntry.model_validate({k: v for k, v in body.items() if k != "status"})
                self._entries[name] = _Entry(
                    served_names.entry_served_name(entry), served_names.claim_of(entry)
                )
        new = self._entries.get(name)
        self._live.entry(name, new.claim if new is not None else None)
        for key in self._by_model.get(name, ()):  # their served name may come from the entry
            self._live.endpoint(key, self._facts_of(key))

    def _facts_of(self, key: Key) -> served_names.EndpointFacts | None:
        found = self._endpoints.get(key)
        if found is None:
            return None
        if found.own_name:
            return found.base
        entry = self._entries.get(found.base.model)
        if entry is None or not entry.served:
            return None
        return dataclasses.replace(found.base, served_name=entry.served)


@dataclasses.dataclass(frozen=True, slots=True)
class _Endpoint:
    base: served_names.EndpointFacts
    """Its facts, with a placeholder served name when it takes its entry's."""
    own_name: bool
    """Whether it sets spec.servedName (else the served name is its entry's)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    served: str
    claim: served_names.EntryClaim | None


def _digest(read: Any) -> bytes:
    """What the rule read, as a digest: kept per object, it costs 32 bytes, not a copy of the spec."""
    return hashlib.sha256(json.dumps(read, sort_keys=True, default=str).encode()).digest()


_ABSENT: Any = object()
"""The mark of an object that is gone (or never seen)."""
