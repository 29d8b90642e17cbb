"""An in-memory stand-in for :class:`modelyard.controllers.cluster.Cluster`, for reconcile tests
that run in milliseconds.

It keeps plain dicts by (apiVersion, kind, namespace, name), bumps ``metadata.generation`` on
each spec change and records every write in :attr:`FakeCluster.writes`, so a test can say what a
reconcile did and that a second one did nothing. What only a real API server shows (admission,
server-side apply field ownership, garbage collection, RBAC) stays in the control-plane tests.
"""

from __future__ import annotations

import copy
import pathlib
import uuid
from typing import Any

from modelyard.builders import settings
from modelyard.controllers import cluster, context, metrics

Key = tuple[str, str, str | None, str]
CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "registry" / "fixtures" / "configs"


def _key(kind: cluster.Kind, name: str, namespace: str | None) -> Key:
    return (kind[0], kind[1], namespace, name)


class FakeCluster:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        """(verb, kind, name) of every write, in order."""
        for obj in objects:
            self.put(obj)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as a user's write would (not recorded in :attr:`writes`)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = _key((obj["apiVersion"], obj["kind"]), meta["name"], meta.get("namespace"))
        old = self.objects.get(key)
        meta.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
        generation = old["metadata"].get("generation", 1) if old else 1
        if old is not None and old.get("spec") != obj.get("spec"):
            generation += 1
        meta["generation"] = generation
        if old is not None and "status" not in obj and "status" in old:
            obj["status"] = old["status"]
        self.objects[key] = obj
        return copy.deepcopy(obj)

    async def get(self, kind: cluster.Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        found = self.objects.get(_key(kind, name, namespace))
        return copy.deepcopy(found) if found is not None else None

    async def list(
        self, kind: cluster.Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        wanted = dict(part.split("=", 1) for part in label_selector.split(",")) if label_selector else {}
        return [
            copy.deepcopy(obj)
            for (version, k, ns, _), obj in sorted(self.objects.items(), key=lambda item: str(item[0]))
            if (version, k) == kind and namespace in (None, ns)
            and wanted.items() <= (obj["metadata"].get("labels") or {}).items()
        ]

    async def apply(self, obj: dict[str, Any], field_manager: str = "", force: bool = True) -> dict[str, Any]:
        self.writes.append(("apply", obj["kind"], obj["metadata"]["name"]))
        return self.put(obj)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        meta = obj["metadata"]
        if _key((obj["apiVersion"], obj["kind"]), meta["name"], meta.get("namespace")) in self.objects:
            return None
        self.writes.append(("create", obj["kind"], meta["name"]))
        return self.put(obj)

    async def delete(
        self, kind: cluster.Kind, name: str, namespace: str | None = None, uid: str | None = None
    ) -> bool:
        found = self.objects.get(_key(kind, name, namespace))
        if found is None or (uid is not None and found["metadata"]["uid"] != uid):
            return False
        self.writes.append(("delete", kind[1], name))
        del self.objects[_key(kind, name, namespace)]
        return True

    async def patch_status(
        self, kind: cluster.Kind, name: str, namespace: str | None, status: dict[str, Any]
    ) -> None:
        found = self.objects.get(_key(kind, name, namespace))
        if found is not None:
            self.writes.append(("status", kind[1], name))
            found["status"] = _merge(found.get("status") or {}, status)

    async def merge_patch(
        self, kind: cluster.Kind, name: str, namespace: str | None, body: dict[str, Any]
    ) -> bool:
        found = self.objects.get(_key(kind, name, namespace))
        if found is None:
            return False
        self.writes.append(("patch", kind[1], name))
        self.put(_merge(found, body))
        return True


def _merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): None deletes, dicts merge, everything else replaces."""
    merged = copy.deepcopy(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Queue:
    """Records what a reconcile woke (stands in for a :class:`~modelyard.controllers.debounce.Debouncer`)."""

    def __init__(self) -> None:
        self.scheduled: list[Any] = []
        self.delays: list[float] = []

    def schedule(self, key: Any, delay: float) -> None:
        self.scheduled.append(key)
        self.delays.append(delay)


def make_context(fake: FakeCluster, namespace: str = "modelyard-system") -> context.Context:
    return context.Context(
        cluster=fake,  # type: ignore[arg-type]
        settings=settings.Settings(),
        metrics=metrics.Metrics.create(),
        namespace=namespace,
        endpoint_queue=Queue(),  # type: ignore[arg-type]
        entry_queue=Queue(),  # type: ignore[arg-type]
        training_queue=Queue(),  # type: ignore[arg-type]
    )


# Objects the reconcile tests start from: an entry of Qwen/Qwen3-4B, its config.json in a ConfigMap.


def entry(name: str, ref: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"source": {"repo": "Qwen/Qwen3-4B"}, **spec}
    if ref is not None:
        body["config"] = {"configMapRef": ref}
    meta = {"name": name}
    return {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEntry", "metadata": meta, "spec": body}


def config_map(name: str, namespace: str = "modelyard-system") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"config.json": (CONFIGS / "Qwen__Qwen3-4B.json").read_text()},
    }
