"""The catalog over the cached ModelEntries, with what the list and detail routes need ready.

Built once per change of the entries (``Cache.derived``): parsing, resolving and summarising a
thousand entries costs tens of milliseconds, so it is not done per request. ``find`` goes
through :meth:`modelyard.registry.catalog.Catalog.find` (the registry's own filter
semantics) and remembers recent answers, since dashboards ask the same few queries.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pydantic

from modelyard import api
from modelyard.registry import catalog, errors, resolve
from modelyard.statusapi import envelope, present, schemas

log = logging.getLogger(__name__)

_FOUND_CACHE = 128
FilterKey = tuple[str | None, str | None, str | None, str | None, str | None]


def _parse(obj: Mapping[str, Any]) -> api.ModelEntry:
    try:
        return api.ModelEntry.model_validate(obj)
    except pydantic.ValidationError:  # a status written by another version: the spec is enough
        return api.ModelEntry.model_validate({k: v for k, v in obj.items() if k != "status"})


class CatalogIndex:
    """A :class:`catalog.Catalog` plus resolutions, ids and summaries of its entries."""

    def __init__(
        self, raw_entries: Iterable[Mapping[str, Any]], previous: CatalogIndex | None = None
    ) -> None:
        """Index ``raw_entries``; entries whose dict is the very one ``previous`` indexed (the
        cache replaces an object's dict when it changes) keep their parse and resolution."""
        self.raw: dict[str, Mapping[str, Any]] = {}
        entries: list[api.ModelEntry] = []
        resolutions: dict[str, resolve.Resolution] = {}
        for obj in raw_entries:
            name = str((obj.get("metadata") or {}).get("name") or "")
            if previous is not None and previous.raw.get(name) is obj and name in previous.entries:
                entries.append(previous.entries[name])
                resolutions[name] = previous.resolutions[name]
                self.raw[name] = obj
                continue
            try:
                entry = _parse(obj)
            except pydantic.ValidationError as exc:
                log.warning("ModelEntry %s left out of the status API: %s", name, exc)
                continue
            entries.append(entry)
            resolutions[name] = resolve.resolve(entry)
            self.raw[name] = obj
        self.models = catalog.Catalog(entries, resolutions)
        self.entries: dict[str, api.ModelEntry] = {e.name: e for e in entries}
        self.resolutions: dict[str, resolve.Resolution] = resolutions
        self.ids = {e.name: self._model_id(e) for e in entries}
        self.served_names = {name: res.served_name for name, res in self.resolutions.items()}
        self.summaries: dict[str, dict[str, Any]] = {}
        for entry in self.models.all():
            name = entry.name
            if (
                previous is not None
                and previous.raw.get(name) is self.raw[name]
                and previous.ids.get(name) == self.ids[name]
            ):
                self.summaries[name] = previous.summaries[name]
            else:
                summary = present.summary(entry, self.resolutions[name], self.ids[name])
                self.summaries[name] = summary.model_dump(mode="json")
        self._found: collections.OrderedDict[FilterKey, list[str]] = collections.OrderedDict()
        self._counts: dict[str, int] | None = None
        self.pages: collections.OrderedDict[tuple[Any, ...], bytes] = collections.OrderedDict()
        """Encoded list responses by query, for the route (LRU)."""

    def page(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> bytes:
        """``render()``'s bytes, remembered for this index under ``key`` (at most 64)."""
        body = self.pages.get(key)
        if body is None:
            body = self.pages[key] = render()
            if len(self.pages) > _FOUND_CACHE // 2:
                self.pages.popitem(last=False)
        else:
            self.pages.move_to_end(key)
        return body

    def _model_id(self, entry: api.ModelEntry) -> str:
        """The source repo (Model Garden's id), else the served name, else the entry name:
        whichever leads back to this entry."""
        for candidate in (entry.spec.source.repo, entry.spec.served_name):
            if candidate and self.models.get(candidate).name == entry.name:
                return candidate
        return entry.name

    def find(self, query: schemas.ModelQuery) -> list[str]:
        """Names of the entries matching ``query``'s filters, sorted by name."""
        key: FilterKey = (
            query.category,
            query.tag,
            query.lifecycle or query.status,
            query.capability,
            query.q,
        )
        found = self._found.get(key)
        if found is not None:
            self._found.move_to_end(key)
            return found
        if not any(key):  # no filter: every entry (find would resolve each one again)
            found = [e.name for e in self.models.all()]
            self._found[key] = found
            return found
        try:
            entries = self.models.find(
                category=key[0], tag=key[1], lifecycle=key[2], capability=key[3], q=key[4]
            )
        except errors.RegistryError as exc:  # an unknown capability
            raise envelope.ApiError(
                400, "invalid_request", f"capability: {exc}", [{"field": "capability", "message": str(exc)}]
            ) from None
        found = [e.name for e in entries]
        self._found[key] = found
        if len(self._found) > _FOUND_CACHE:
            self._found.popitem(last=False)
        return found

    def get(self, model_id: str) -> api.ModelEntry:
        """The entry for a model id, served name or entry name; 404 otherwise."""
        try:
            return self.models.get(model_id)
        except errors.ModelNotFoundError as exc:
            raise envelope.ApiError(404, "not_found", str(exc)) from None

    def categories(self) -> dict[str, schemas.CategoryInfo]:
        if self._counts is None:
            self._counts = self.models.categories()
        counts = self._counts
        return {
            category: schemas.CategoryInfo(
                name=name, description=text, icon=icon, count=counts.get(category, 0)
            )
            for category, (name, text, icon) in present.CATEGORY_INFO.items()
        }
