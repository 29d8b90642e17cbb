"""The operator's own watches, of its children (:mod:`.child_watches`) and of the custom kinds
(:mod:`.custom_watches`): a LIST, then a WATCH from its resourceVersion, the objects kept in a
:class:`Store` the informer reads (:mod:`.informer`), each event handed on to what it wakes.

Why not kopf's watches: kopf filters ``labels=`` on its own side, so it watched every pod of the
cluster, and it ran each event through its per-object worker, handler selection, kwargs and
state machinery, then decoded it with the stdlib's json. At 1000 endpoints that was about 40 %
of the operator's CPU with the children on it, 28 % with the custom kinds alone (py-spy,
docs/benchmarks.md). Here the API server selects by label, msgspec decodes, and the store keeps
the trimmed object (:func:`.informer.trim`).

Kept consistent as client-go's reflector keeps its cache: a watch that ends (the server's
``timeoutSeconds``, a dropped connection) resumes from the last resourceVersion seen, bookmarks
included; a 410 Gone (that version is compacted away) lists again, and what the new listing
lacks is reported deleted; any other failure lists again after a backoff (1 s doubling to 30 s).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from modelyard.controllers import cluster, informer, kube_errors

log = logging.getLogger(__name__)

WATCH_SECONDS = (240, 360)
"""A watch asks the server to end it after this many seconds (random within, so a fleet of
watches does not end at once), and is then resumed from where it was."""
PAGE = 500
"""Objects per page of a listing (a fleet's listing is never one answer in memory)."""
BACKOFF = (1.0, 30.0)

Handler = Callable[[str, dict[str, Any]], None]
"""Called with each event's type (``ADDED``, ``MODIFIED``, ``DELETED``) and the object as the
API server sent it (the store keeps less of it)."""


class Store:
    """One kind's objects as the watch last reported them, grouped by the informer's key
    (:func:`.informer.key_of`: an endpoint's pods share one). Reads as kopf's indices do:
    ``key in store``, ``store[key]`` (that key's objects), iteration over the keys."""

    def __init__(self, kind: cluster.Kind) -> None:
        self.kind = kind
        self._keys: dict[str, Any] = {}
        """Each object's group, by uid."""
        self._groups: dict[Any, dict[str, dict[str, Any]]] = {}

    def put(self, body: dict[str, Any]) -> None:
        uid = _uid(body)
        self.drop(uid)
        key = informer.key_of(self.kind, body)
        self._keys[uid] = key
        self._groups.setdefault(key, {})[uid] = informer.trim(body)

    def drop(self, uid: str) -> dict[str, Any] | None:
        key = self._keys.pop(uid, None)
        group = self._groups.get(key)
        if group is None:
            return None
        gone = group.pop(uid, None)
        if not group:
            del self._groups[key]
        return gone

    def __contains__(self, key: object) -> bool:
        return key in self._groups

    def __getitem__(self, key: Any) -> list[dict[str, Any]]:
        return list(self._groups[key].values())

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._groups))

    def __len__(self) -> int:
        return len(self._groups)


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class Watch:
    """Objects of ``kind`` with labels matching ``selector`` (all of them when it is empty),
    cluster-wide. With a ``store``,
    the informer is given it once the first listing is in (before that, reads are GETs)."""

    def __init__(
        self,
        kind: cluster.Kind,
        selector: str,
        on_event: Handler,
        store: Store | None = None,
        reads: informer.Informer | None = None,
    ) -> None:
        self.kind, self.selector, self.on_event, self.store, self.reads = (
            kind,
            selector,
            on_event,
            store,
            reads,
        )
        self._seen: dict[str, str] = {}
        """resourceVersion by uid of what this watch reported (with or without a store)."""
        self._bodies: dict[str, dict[str, Any]] = {}
        """Without a store: the metadata of each object, for the deletions a listing finds."""
        self.listed = asyncio.Event()

    async def run(self, kube: cluster.Cluster) -> None:
        """List and watch until cancelled."""
        backoff = BACKOFF[0]
        while True:
            try:
                version = await self._list(kube)
                backoff = BACKOFF[0]
                while True:
                    version = await self._watch(kube, version)
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("watch of %s: resourceVersion gone; listing again", self.kind[1])
            except Exception as exc:  # the API server away, a dropped connection: list again
                log.warning("watch of %s failed (%s); listing again in %.0f s", self.kind[1], exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF[1])

    async def _list(self, kube: cluster.Cluster) -> str:
        """One listing (paged): report what is new, changed or gone since the last; its version."""
        found: dict[str, dict[str, Any]] = {}
        query = {"limit": str(PAGE), **self._selected()}
        while True:
            page = await kube.request("GET", cluster.path(self.kind), query=query)
            for item in page.get("items") or []:
                found[_uid(item)] = item
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            query = {**query, "continue": str(meta["continue"])}
        for uid in [uid for uid in self._seen if uid not in found]:
            self._deleted(uid, None)
        for uid, item in found.items():
            before = self._seen.get(uid)
            if before != _version(item):
                self._changed("ADDED" if before is None else "MODIFIED", item)
        if self.store is not None and self.reads is not None and not self.listed.is_set():
            self.reads.own(self.kind, self.store)
        self.listed.set()
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, kube: cluster.Cluster, version: str) -> str:
        """Watch from ``version`` until the server ends it; the last version seen."""
        query = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": version,
            **self._selected(),
            "timeoutSeconds": str(random.randint(*WATCH_SECONDS)),
        }
        async for line in kube.stream(cluster.path(self.kind), query):
            event = msgspec.json.decode(line)
            kind, body = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if body.get("code") == 410:
                    raise Gone()
                raise kube_errors.error(int(body.get("code") or 500), body)
            version = _version(body) or version
            if kind == "DELETED":
                self._deleted(_uid(body), body)
            elif kind in ("ADDED", "MODIFIED"):
                self._changed(kind, body)
        return version

    def _selected(self) -> dict[str, str]:
        return {"labelSelector": self.selector} if self.selector else {}

    def _changed(self, kind: str, body: dict[str, Any]) -> None:
        body.setdefault("apiVersion", self.kind[0])  # a listing's items carry no kind
        body.setdefault("kind", self.kind[1])
        uid = _uid(body)
        self._seen[uid] = _version(body)
        if self.store is not None:
            self.store.put(body)
        else:
            self._bodies[uid] = {"metadata": body.get("metadata") or {}}
        self._hand_on(kind, body)

    def _deleted(self, uid: str, body: dict[str, Any] | None) -> None:
        self._seen.pop(uid, None)
        last = self.store.drop(uid) if self.store is not None else self._bodies.pop(uid, None)
        if body is None and last is not None:  # found gone by a listing: its last state
            body = {"apiVersion": self.kind[0], "kind": self.kind[1], **last}
        if body is not None:
            self._hand_on("DELETED", body)

    def _hand_on(self, kind: str, body: dict[str, Any]) -> None:
        try:
            self.on_event(kind, body)
        except Exception:  # one bad event never stops the watch
            log.exception("handling a %s event of %s failed", kind, self.kind[1])


def _uid(body: dict[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("uid"))


def _version(body: dict[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")
