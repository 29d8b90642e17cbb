"""The operator's view of served-name ownership, kept from its watches (no request per reconcile).

Every ModelEndpoint and ModelEntry event updates the index; the rule itself is
:func:`modelyard.api.served_names.decide`. When an event changes another endpoint's verdict
(the owner's endpoint is deleted, an entry claims a name, an owner shares it), the index
returns that endpoint so the caller can reconcile it: the next oldest takes the name, a
newly shut-out endpoint reports ServedNameConflict.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from modelyard import api
from modelyard.api import served_names

log = logging.getLogger(__name__)

Key = tuple[str, str]


def plain(value: Any) -> Any:
    """A watch event's body (kopf hands out read-only mapping views) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Index:
    """Parsed endpoints and entries by key; the verdicts of the last decision."""

    def __init__(self) -> None:
        self._endpoints: dict[Key, tuple[api.ModelEndpoint, str]] = {}
        self._entries: dict[str, api.ModelEntry] = {}
        self._decided: served_names.Ownership | None = None

    def seed(self, endpoints: Iterable[dict[str, Any]], entries: Iterable[dict[str, Any]]) -> None:
        """Fill from one listing (at start, before the watches report)."""
        for body in entries:
            self._put_entry(body)
        for body in endpoints:
            self._put_endpoint(body)
        self._decided = None

    def endpoint_event(self, body: dict[str, Any], deleted: bool = False) -> set[Key]:
        """Record an endpoint as the API server has it now; the endpoints whose verdict moved."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name")))
        return self._changed(lambda: self._drop_endpoint(key) if deleted else self._put_endpoint(body))

    def entry_event(self, body: dict[str, Any], deleted: bool = False) -> set[Key]:
        name = str((body.get("metadata") or {}).get("name"))
        return self._changed(lambda: self._entries.pop(name, None) if deleted else self._put_entry(body))

    def decide(self) -> served_names.Ownership:
        if self._decided is None:
            facts = []
            for endpoint, created in self._endpoints.values():
                fact = served_names.facts_of(endpoint, self._entries.get(endpoint.spec.model), created)
                if fact is not None:
                    facts.append(fact)
            claims = [c for c in map(served_names.claim_of, self._entries.values()) if c is not None]
            self._decided = served_names.decide(facts, claims)
        return self._decided

    def verdict(self, namespace: str, name: str) -> served_names.Verdict:
        return self.decide().verdict(namespace, name)

    # -- internals -------------------------------------------------------------------------

    def _changed(self, change: Any) -> set[Key]:
        before = self.decide().verdicts
        change()
        self._decided = None
        after = self.decide().verdicts
        return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}

    def _put_endpoint(self, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name")))
        if meta.get("deletionTimestamp"):
            self._drop_endpoint(key)
            return
        try:
            endpoint = api.ModelEndpoint.model_validate({k: v for k, v in body.items() if k != "status"})
        except pydantic.ValidationError:
            self._drop_endpoint(key)  # it cannot be served; its own reconcile reports why
            return
        self._endpoints[key] = (endpoint, str(meta.get("creationTimestamp") or ""))

    def _drop_endpoint(self, key: Key) -> None:
        self._endpoints.pop(key, None)

    def _put_entry(self, body: dict[str, Any]) -> None:
        name = str((body.get("metadata") or {}).get("name"))
        try:
            self._entries[name] = api.ModelEntry.model_validate(
                {k: v for k, v in body.items() if k != "status"}
            )
        except pydantic.ValidationError:
            self._entries.pop(name, None)
