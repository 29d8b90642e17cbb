"""The status API's cache of the cluster: ModelEntries, ModelEndpoints and TrainingJobs as the
Kubernetes API returns them, kept current by whoever watches (the operator's kopf event
handlers, or a test), and read by the HTTP handlers.

Writers call :meth:`Cache.upsert` and :meth:`Cache.delete` (from the event loop or from any
thread); each real change bumps a counter and wakes :meth:`Cache.wait`, which the event
stream awaits, so a browser learns of a change at once. Derived data (the catalog over the
entries, endpoint traffic shares) is rebuilt lazily, at most once per change of what it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from modelyard.api import wire
from modelyard.registry import documents

KINDS = ("ModelEntry", "ModelEndpoint", "TrainingJob")
_ALIASES = {
    **{k.lower(): k for k in KINDS},
    wire.MODEL_ENTRIES: "ModelEntry",
    wire.MODEL_ENDPOINTS: "ModelEndpoint",
    wire.TRAINING_JOBS: "TrainingJob",
}

Obj = dict[str, Any]
T = TypeVar("T")


def kind_of(name: str) -> str:
    """``ModelEntry`` for ``ModelEntry``, ``modelentry`` or ``modelentries``; raises otherwise."""
    kind = _ALIASES.get(name.lower())
    if kind is None:
        raise ValueError(f"unknown kind {name!r}; one of {', '.join(KINDS)}")
    return kind


def _clean(obj: Mapping[str, Any]) -> Obj:
    """A plain copy without what nobody here reads: managedFields are most of an object's size."""
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    cleaned: Obj = documents.plain(
        {**{k: v for k, v in obj.items() if k != "metadata"}, "metadata": metadata}
    )
    return cleaned


class Cache:
    """Objects by kind, then by ``(namespace, name)`` (namespace ``""`` for ModelEntries)."""

    def __init__(self, objects: Iterable[Mapping[str, Any]] = ()) -> None:
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {k: {} for k in KINDS}
        self._version = 0
        self._changed_at: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._cache: dict[str, tuple[tuple[int, ...], Any]] = {}
        for obj in objects:
            self.upsert(obj)

    # -- writers -------------------------------------------------------------------------

    def upsert(self, obj: Mapping[str, Any]) -> bool:
        """Add or replace an object (its ``kind`` says which); True when something changed."""
        kind = kind_of(str(obj.get("kind", "")))
        metadata = obj.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        if not key[1]:
            raise ValueError(f"a {kind} without metadata.name")
        cleaned = _clean(obj)
        with self._lock:
            if self._objects[kind].get(key) == cleaned:
                return False
            self._objects[kind][key] = cleaned
            self._bump(kind)
        self._notify()
        return True

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Forget an object; True when it was there."""
        kind = kind_of(kind)
        with self._lock:
            if self._objects[kind].pop((namespace or "", name), None) is None:
                return False
            self._bump(kind)
        self._notify()
        return True

    def apply_event(self, event: Mapping[str, Any], kind: str | None = None) -> bool:
        """A watch event ``{"type", "object"}`` as Kubernetes (and kopf's ``event`` kwarg) gives
        it: DELETED deletes, anything else (ADDED, MODIFIED, kopf's initial None) upserts.
        ``kind`` fills in an object that lacks one."""
        obj = event.get("object") or {}
        if kind is not None and not obj.get("kind"):
            obj = {**obj, "kind": kind}
        if event.get("type") == "DELETED":
            metadata = obj.get("metadata") or {}
            return self.delete(str(obj.get("kind", "")), metadata.get("namespace"), str(metadata.get("name")))
        return self.upsert(obj)

    def replace(self, kind: str, objects: Iterable[Mapping[str, Any]]) -> None:
        """Make ``kind``'s objects exactly these (after a re-list)."""
        kind = kind_of(kind)
        fresh = {}
        for obj in objects:
            metadata = obj.get("metadata") or {}
            fresh[(str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))] = _clean(obj)
        with self._lock:
            if self._objects[kind] == fresh:
                return
            self._objects[kind] = fresh
            self._bump(kind)
        self._notify()

    def touch(self, kind: str) -> None:
        """Say that what is derived from ``kind`` changed without an object changing (the
        dashboard's live traffic of ModelEndpoints)."""
        with self._lock:
            self._bump(kind_of(kind))
        self._notify()

    def _bump(self, kind: str) -> None:
        self._version += 1
        self._changed_at[kind] = self._version

    # -- readers -------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The change counter: bumped by every upsert or delete that changed something."""
        return self._version

    def kind_version(self, kind: str) -> int:
        """The counter's value at ``kind``'s last change."""
        return self._changed_at[kind_of(kind)]

    def changed_since(self, version: int) -> list[str]:
        """The kinds changed after counter value ``version``."""
        return [k for k in KINDS if self._changed_at[k] > version]

    def objects(self, kind: str) -> list[Obj]:
        """``kind``'s objects, sorted by namespace and name."""
        kind = kind_of(kind)
        with self._lock:
            items = sorted(self._objects[kind].items())
        return [obj for _, obj in items]

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        return self._objects[kind_of(kind)].get((namespace or "", name))

    def derived(self, name: str, kinds: tuple[str, ...], build: Callable[[T | None], T]) -> T:
        """``build(previous)``'s value, cached until one of ``kinds`` changes; ``previous`` is
        the value it replaces (None the first time), for builders that reuse what did not change."""
        key = tuple(self._changed_at[kind_of(k)] for k in kinds)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == key:
            value: T = cached[1]
            return value
        value = build(cached[1] if cached is not None else None)
        self._cache[name] = (key, value)
        return value

    # -- waiting for changes -------------------------------------------------------------

    async def wait(self, since: int, timeout: float) -> int:
        """Wait until the counter passes ``since`` (or ``timeout`` seconds); the counter."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._event is None:
            self._loop, self._event = loop, asyncio.Event()
        deadline = loop.time() + timeout
        while self._version <= since:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            event = self._event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return self._version

    def _notify(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()
