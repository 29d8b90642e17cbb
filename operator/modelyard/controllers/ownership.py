"""The operator's view of served-name ownership, kept from its watches (no request per reconcile).

Every ModelEndpoint and ModelEntry event updates the index; the rule itself is
:func:`modelyard.api.served_names.decide`. When an event changes another endpoint's verdict
(the owner's endpoint is deleted, an entry claims a name, an owner shares it), the index
returns that endpoint so the caller can reconcile it: the next oldest takes the name, a
newly shut-out endpoint reports ServedNameConflict.
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
from modelyard.api import served_names
from modelyard.registry import documents

log = logging.getLogger(__name__)

Key = tuple[str, str]


plain = documents.plain
"""A watch event's body (kopf hands out read-only mapping views) as plain dicts and lists."""


class Index:
    """Parsed endpoints and entries by key, each endpoint's facts, the verdicts of the last decision.

    Most events change nothing the rule reads (a status patch, a label): they are told apart
    by what the rule reads (an endpoint's spec and creation time, an entry's spec) and cost no
    decision. A real change decides again from the kept facts (an endpoint's facts are
    recomputed when it or its entry changes), so the cost per event does not grow with every
    endpoint's parse."""

    def __init__(self) -> None:
        self._endpoints: dict[Key, tuple[api.ModelEndpoint, str]] = {}
        self._entries: dict[str, _Entry] = {}
        """What the rule reads of each valid entry (not the parsed entry: a catalog has thousands)."""
        self._facts: dict[Key, served_names.EndpointFacts | None] = {}
        self._by_model: dict[str, set[Key]] = {}
        self._marks: dict[tuple[str, Any], Any] = {}
        """What the rule read of each object when it was last recorded."""
        self._decided: served_names.Ownership | None = None

    def seed(self, endpoints: Iterable[dict[str, Any]], entries: Iterable[dict[str, Any]]) -> None:
        """Fill from one listing (at start, before the watches report)."""
        for body in entries:
            self._record_entry(body, deleted=False)
        for body in endpoints:
            self._record_endpoint(body, deleted=False)
        self._decided = None

    def endpoint_event(self, body: dict[str, Any], deleted: bool = False) -> set[Key]:
        """Record an endpoint as the API server has it now; the endpoints whose verdict moved."""
        return self._changed(lambda: self._record_endpoint(body, deleted))

    def entry_event(self, body: dict[str, Any], deleted: bool = False) -> set[Key]:
        return self._changed(lambda: self._record_entry(body, deleted))

    def decide(self) -> served_names.Ownership:
        if self._decided is None:
            facts = [fact for fact in self._facts.values() if fact is not None]
            claims = [entry.claim for entry in self._entries.values() if entry.claim is not None]
            self._decided = served_names.decide(facts, claims)
        return self._decided

    def verdict(self, namespace: str, name: str) -> served_names.Verdict:
        return self.decide().verdict(namespace, name)

    # -- internals -------------------------------------------------------------------------

    def _changed(self, record: Any) -> set[Key]:
        before = self.decide().verdicts  # kept from the last change: no cost
        if not record():
            return set()  # nothing the rule reads moved
        self._decided = None
        after = self.decide().verdicts
        return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}

    def _mark(self, kind: str, key: Any, mark: Any) -> bool:
        """Remember what the rule read of an object; False when it is what was read last."""
        if self._marks.get((kind, key), _ABSENT) == mark:
            return False
        if mark is _ABSENT:
            self._marks.pop((kind, key), None)
        else:
            self._marks[(kind, key)] = mark
        return True

    def _record_endpoint(self, body: dict[str, Any], deleted: bool) -> bool:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name")))
        gone = deleted or bool(meta.get("deletionTimestamp"))
        mark = _ABSENT if gone else _digest([body.get("spec"), meta.get("creationTimestamp")])
        if not self._mark("endpoint", key, mark):
            return False
        before = self._facts.get(key)
        self._drop_endpoint(key)
        if not gone:
            with contextlib.suppress(pydantic.ValidationError):  # unservable: its reconcile says why
                endpoint = api.ModelEndpoint.model_validate({k: v for k, v in body.items() if k != "status"})
                self._endpoints[key] = (endpoint, str(meta.get("creationTimestamp") or ""))
                self._by_model.setdefault(endpoint.spec.model, set()).add(key)
                self._facts[key] = self._facts_of(key)
        return self._facts.get(key) != before  # what the rule decides from moved

    def _drop_endpoint(self, key: Key) -> None:
        found = self._endpoints.pop(key, None)
        self._facts.pop(key, None)
        if found is not None:
            keys = self._by_model.get(found[0].spec.model)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_model[found[0].spec.model]

    def _record_entry(self, body: dict[str, Any], deleted: bool) -> bool:
        name = str((body.get("metadata") or {}).get("name"))
        if not self._mark("entry", name, _ABSENT if deleted else _digest(body.get("spec"))):
            return False
        old = self._entries.pop(name, None)
        claim = old.claim if old is not None else None
        facts = {key: self._facts.get(key) for key in self._by_model.get(name, ())}
        if not deleted:
            with contextlib.suppress(pydantic.ValidationError):  # an invalid entry serves nothing
                entry = api.ModelEntry.model_validate({k: v for k, v in body.items() if k != "status"})
                served = served_names.entry_served_name(entry)
                self._entries[name] = _Entry(served, served_names.claim_of(entry))
        for key in facts:  # their served name may come from the entry
            self._facts[key] = self._facts_of(key)
        new = self._entries.get(name)
        return claim != (new.claim if new is not None else None) or any(
            self._facts[key] != fact for key, fact in facts.items()
        )

    def _facts_of(self, key: Key) -> served_names.EndpointFacts | None:
        endpoint, created = self._endpoints[key]
        entry = self._entries.get(endpoint.spec.model)
        return served_names.facts_with(endpoint, entry.served if entry is not None else None, created)


@dataclasses.dataclass(frozen=True)
class _Entry:
    served: str
    claim: served_names.EntryClaim | None


def _digest(read: Any) -> bytes:
    """What the rule read, as a digest: kept per object, it costs 32 bytes, not a copy of the spec."""
    return hashlib.sha256(json.dumps(read, sort_keys=True, default=str).encode()).digest()


_ABSENT: Any = object()
"""The mark of an object that is gone (or never seen)."""
