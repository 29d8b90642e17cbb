"""What the watches report, read by reconciles instead of a GET each (an informer's cache).

One in-memory store per watched kind, kept by the operator's own watches (:mod:`.watches`):
entries by name, endpoints by (namespace, name), the TrainingJobs whose ``output.serveOn``
names an endpoint by (namespace, endpoint) (:mod:`.custom_watches`), an endpoint's Deployments
and Services by (namespace, name) and its pods by (namespace, endpoint)
(:mod:`.child_watches`). Each is given here once its watch's first listing is in; before
that, reads are GETs. A GET was most of the operator's requests.

Where staleness could do harm, the read is fresh:

* **A miss is a GET.** An object the index lacks may be new (its event not handled yet) or not
  ours: a same-named Deployment or Service someone else made carries none of our labels, so no
  watch reports it, and applying over it would take it. So before a child is created, the
  ownership check GETs it (:mod:`.model_endpoint`); an entry or endpoint the index lacks is
  read too (a deletion is then certain).
* **Our own writes count at once.** A status patch or an apply returns the object; until the
  watch reports that version (or a later one), :meth:`Informer.cached` returns it, so the next
  reconcile compares against what was written, not against what the watch said before it (a
  stale status could hide a needed write). Versions are compared as the integers etcd gives
  them; a resourceVersion that is not one never wins over the index.
* **A hit may be a little behind**, never wrong for long: every change of a watched object is
  an event that wakes the reconciles reading it (a hand edit of a child wakes its endpoint,
  which then re-applies; an entry change wakes its endpoints).

ConfigMaps and Secrets are not watched: they stay a GET. Values are read-only (shared).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from modelyard.api import wire
from modelyard.controllers import cluster
from modelyard.registry import documents


class Getter(Protocol):
    async def get(
        self, kind: cluster.Kind, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...


_DROPPED: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec",),
    "Service": ("spec", "status"),
}
"""What a reconcile never reads of a child (it builds the spec, and compares what it built with
what it last applied, not with the live one); the memory grows with the fleet."""


def trim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the indices keep of an object, as plain dicts and lists: no managedFields' field
    sets, and a child without what :data:`_DROPPED` names (a Deployment keeps its metadata and
    status). A Deployment or Service keeps who manages it and how (``manager``, ``operation``,
    ``subresource``): a child the operator created with a POST is handed to its server-side
    apply before it is applied again (:func:`modelyard.controllers.model_endpoint.handed_to_apply`).

    Keys and short strings are interned (:func:`documents.plain`): every object repeats the same
    few hundred, and without it a fleet of N endpoints keeps N copies of each."""
    kind = str(body.get("kind"))
    dropped = {*_DROPPED.get(kind, ()), "metadata"}
    obj: dict[str, Any] = documents.plain({k: v for k, v in body.items() if k not in dropped})
    meta = body.get("metadata") or {}
    obj["metadata"] = documents.plain({k: v for k, v in meta.items() if k != "managedFields"})
    managers = [
        {k: entry[k] for k in _MANAGER if entry.get(k)}
        for entry in meta.get("managedFields") or []
        if entry.get("manager")
    ]
    if kind in ("Deployment", "Service") and managers:
        obj["metadata"]["managedFields"] = documents.plain(managers)
    return obj


_MANAGER = ("manager", "operation", "subresource")


_CREATED = (cluster.DEPLOYMENT, cluster.SERVICE)
"""Kinds the operator creates (:mod:`.child_writes`): one it created is known from the POST's
answer until the watch reports it, or the next reconcile would POST it again (a 409, a GET and
a handover patch, measured on about a tenth of the endpoints at 1000) and until a deletion event
forgets it. Entries and endpoints are the users': the index alone says whether they exist."""

_LISTS = (cluster.POD, cluster.TRAINING_JOB)
"""Kinds indexed by the endpoint they belong to (a list each), not by their own name."""


def key_of(kind: cluster.Kind, body: Mapping[str, Any]) -> Any:
    """The object's key in its index; None for a TrainingJob that serves on no endpoint."""
    meta = body.get("metadata") or {}
    if kind == cluster.MODEL_ENTRY:
        return str(meta.get("name"))
    if kind == cluster.POD:
        return (str(meta.get("namespace") or ""), str((meta.get("labels") or {}).get(wire.ENDPOINT)))
    if kind == cluster.TRAINING_JOB:
        serve_on = ((body.get("spec") or {}).get("output") or {}).get("serveOn") or {}
        endpoint = serve_on.get("endpoint")
        return (str(meta.get("namespace") or ""), str(endpoint)) if endpoint else None
    return (str(meta.get("namespace") or ""), str(meta.get("name")))


def _version(body: Mapping[str, Any] | None) -> int:
    text = str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else -1


def essence(body: Mapping[str, Any]) -> str:
    """What a change of the object itself is (kopf's "essence"): everything but status and the
    metadata the API server keeps; labels, annotations and a deletion count."""
    meta = body.get("metadata") or {}
    kept = {k: meta.get(k) for k in ("labels", "annotations", "deletionTimestamp", "uid")}
    rest = {k: v for k, v in body.items() if k not in ("metadata", "status")}
    return hashlib.sha256(json.dumps([kept, rest], sort_keys=True, default=str).encode()).hexdigest()


class Informer:
    def __init__(self) -> None:
        self._indices: dict[cluster.Kind, Any] = {}
        self._written: dict[tuple[cluster.Kind, Any], dict[str, Any]] = {}
        """Objects as our own writes returned them, until the watch catches up."""
        self._essences: dict[tuple[str, Any], str] = {}
        self._autoscaled: set[tuple[str, str]] = set()
        """Endpoints with ``spec.autoscaling`` or ``status.autoscaling`` (:meth:`autoscaled`)."""
        self.misses = 0
        """Reads the indices could not answer (each was a GET)."""

    def own(self, kind: cluster.Kind, store: Any) -> None:
        """Read ``kind`` from one of the operator's watches (:class:`.watches.Store`, or any
        mapping of key to a list of objects), once its first listing is in."""
        self._indices[kind] = store

    def attached(self, kind: cluster.Kind) -> bool:
        return kind in self._indices

    def cached(self, kind: cluster.Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as the watch (or our last write) has it; None when the index lacks it."""
        index = self._indices.get(kind)
        if index is None:
            return None
        key = name if kind == cluster.MODEL_ENTRY else (namespace or "", name)
        seen = max(index[key], key=_version) if key in index else None
        written = self._written.get((kind, key))
        if written is None:
            return seen
        if seen is None and kind in _CREATED:
            return written  # created by us, not reported yet (a deletion's event forgets it)
        if seen is None or _version(seen) >= _version(written):
            del self._written[(kind, key)]  # gone, or the watch has caught up
            return seen
        return written if _uid(written) == _uid(seen) else seen

    def sweep(self) -> int:
        """Drop what our writes returned of the objects the watch has since reported (that
        version or a later one), or that are gone: :meth:`cached` does this for the object it
        reads, but an endpoint's last write (Ready) has no next reconcile, and without a sweep
        every endpoint would keep a copy of what the index already holds. Returns how many are
        left (written, not reported yet)."""
        for kind, key in list(self._written):
            name, namespace = (key, None) if kind == cluster.MODEL_ENTRY else (key[1], key[0])
            self.cached(kind, name, namespace)  # (drops it when the watch has caught up, or it is gone)
        return len(self._written)

    def echo(self, body: Mapping[str, Any]) -> bool:
        """Whether a watch event reports exactly what one of our writes returned (the same
        resourceVersion): the reconcile that wrote it knows it already, so it wakes nothing."""
        kind = (str(body.get("apiVersion")), str(body.get("kind")))
        written = self._written.get((kind, key_of(kind, body)))
        return written is not None and _version(written) == _version(body) >= 0

    def forget(self, body: Mapping[str, Any]) -> None:
        """A child's deletion was reported: what our writes returned of it is no longer true."""
        kind = (str(body.get("apiVersion")), str(body.get("kind")))
        self._written.pop((kind, key_of(kind, body)), None)

    async def read(
        self, client: Getter, kind: cluster.Kind, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The cached object, else a GET (see the module docstring for why a miss is read)."""
        found = self.cached(kind, name, namespace)
        if found is not None:
            return found
        self.misses += 1
        return await client.get(kind, name, namespace)

    def every(self, kind: cluster.Kind) -> list[dict[str, Any]] | None:
        """Every object of a kind keyed by its own name, as the watch has it (our own writes
        not overlaid); None before its watch has listed."""
        index = self._indices.get(kind)
        if index is None or kind in _LISTS:
            return None
        return [max(index[key], key=_version) for key in list(index)]

    def track_autoscaling(self, body: Mapping[str, Any], deleted: bool) -> None:
        """An endpoint's event: whether it is one the autoscaler's round reads."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name")))
        scaled = (body.get("spec") or {}).get("autoscaling") or (body.get("status") or {}).get("autoscaling")
        if scaled and not deleted:
            self._autoscaled.add(key)
        else:
            self._autoscaled.discard(key)

    def autoscaled(self) -> list[dict[str, Any]] | None:
        """The endpoints with ``spec.autoscaling`` (or a ``status.autoscaling`` to clear) as the
        watch has them, so a round every second costs what is autoscaled, not the fleet; None
        before the indices are attached."""
        if cluster.MODEL_ENDPOINT not in self._indices:
            return None
        found = (self.cached(cluster.MODEL_ENDPOINT, name, ns) for ns, name in sorted(self._autoscaled))
        return [body for body in found if body is not None]

    def pods(self, namespace: str, endpoint: str) -> list[dict[str, Any]] | None:
        """The endpoint's pods as the watch has them; None before its watch has listed."""
        return self._belonging(cluster.POD, namespace, endpoint)

    def serving_jobs(self, namespace: str, endpoint: str) -> list[dict[str, Any]] | None:
        """The TrainingJobs whose ``output.serveOn`` names the endpoint, as the watch has them;
        None before its watch has listed."""
        return self._belonging(cluster.TRAINING_JOB, namespace, endpoint)

    def _belonging(self, kind: cluster.Kind, namespace: str, endpoint: str) -> list[dict[str, Any]] | None:
        index = self._indices.get(kind)
        if index is None:
            return None
        key = (namespace, endpoint)
        return sorted(index[key], key=lambda p: str(p["metadata"].get("name"))) if key in index else []

    def wrote(self, body: dict[str, Any] | None) -> None:
        """Remember what a write returned (an apply's or a status patch's answer)."""
        if not body:
            return
        kind = (str(body.get("apiVersion")), str(body.get("kind")))
        if kind in self._indices and kind not in _LISTS:
            self._written[(kind, key_of(kind, body))] = trim(body)

    def changed(self, plural: str, body: Mapping[str, Any], deleted: bool) -> bool:
        """Whether an event is a change of the object itself (or its first sight, or its end):
        what kopf's create/update/resume/delete handlers told apart with an annotation."""
        meta = body.get("metadata") or {}
        key = (plural, (meta.get("namespace"), meta.get("name")))
        if deleted:
            self._essences.pop(key, None)
            return True
        now = essence(body)
        if self._essences.get(key) == now:
            return False
        self._essences[key] = now
        return True


def _uid(body: Mapping[str, Any] | None) -> Any:
    return ((body or {}).get("metadata") or {}).get("uid")
