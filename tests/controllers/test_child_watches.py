"""The operator's own watches of its children (:mod:`modelyard.controllers.watches`,
:mod:`modelyard.controllers.child_watches`): which objects each selects on the API server's side,
what an event wakes, and how a watch stays consistent (resumed from the last version, listed
again after a 410 with the vanished objects reported deleted, a failure retried), against a
small fake API server. That the operator converges through them on a real cluster is what every
on-cluster operator test checks (tests/controllers/test_endpoint_lifecycle.py and others)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import fakeapi
import pytest
from aiohttp import web
from fakecluster import FakeCluster, make_context

from modelyard.api import wire
from modelyard.controllers import child_watches, cluster, context, informer, watches

pytestmark = pytest.mark.timeout(60)

MANAGED = {wire.MANAGED_BY: wire.PRODUCT}


def _pod(name: str, version: int, endpoint: str = "chat", **extra: Any) -> dict[str, Any]:
    labels = {**MANAGED, wire.ENDPOINT: endpoint}
    meta = {"name": name, "namespace": "team", "uid": f"uid-{name}", "resourceVersion": str(version),
            "labels": labels, "managedFields": [{"manager": "kubelet"}]}  # fmt: skip
    return {"metadata": meta, "spec": {"containers": []}, "status": {"phase": "Running"}, **extra}


class FakeWatchApi:
    """Pods: a listing of ``listings[0]`` (then the next, if any), paged by ``limit``; each watch
    request answers the next script of ``streams`` (events, or raw lines), then ends."""

    def __init__(self, listings: list[list[dict[str, Any]]], streams: list[list[Any]]) -> None:
        self.listings, self.streams = listings, streams
        self.requests: list[dict[str, str]] = []
        self.list_failures = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append(query)
        if query.get("watch") != "true":
            if self.list_failures:
                self.list_failures -= 1
                return web.json_response({"kind": "Status", "code": 500}, status=500)
            items = self.listings[0] if len(self.listings) == 1 else self.listings.pop(0)
            start = int(query.get("continue") or 0)
            end = start + int(query["limit"])
            meta = {"resourceVersion": "100", **({"continue": str(end)} if end < len(items) else {})}
            return web.json_response({"kind": "PodList", "metadata": meta, "items": items[start:end]})
        answer = web.StreamResponse()
        await answer.prepare(request)
        for event in self.streams.pop(0) if self.streams else []:
            line = event if isinstance(event, bytes) else json.dumps(event).encode() + b"\n"
            for at in range(0, len(line), 7000):  # events split across chunks
                await answer.write(line[at : at + 7000])
        await answer.write_eof()
        return answer


def _run(fake: FakeWatchApi, test: Callable[[cluster.Cluster], Awaitable[None]]) -> None:
    async def main() -> None:
        async with fakeapi.serving(fake.handle) as kube:
            await test(kube)

    asyncio.run(main())


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


def _watch(seen: list[tuple[str, str, str]], reads: informer.Informer) -> watches.Watch:
    def on_event(kind: str, body: dict[str, Any]) -> None:
        seen.append((kind, body["metadata"]["name"], body["metadata"]["resourceVersion"]))

    return watches.Watch(cluster.POD, child_watches.OF_ENDPOINT, on_event, watches.Store(cluster.POD), reads)


def test_a_paged_listing_then_events_fill_the_store_the_informer_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The informer reads the store only once the listing is in; events update it; a watch that
    ends is resumed from the last version seen, a bookmark's included."""
    monkeypatch.setattr(watches, "PAGE", 2)
    listing = [_pod("a", 1), _pod("b", 2), _pod("c", 3, endpoint="other")]
    first = [
        {"type": "MODIFIED", "object": _pod("a", 7)},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
    ]
    second = [{"type": "DELETED", "object": _pod("b", 10)}, {"type": "ADDED", "object": _pod("d", 11)}]
    fake = FakeWatchApi([listing], [first, second])
    seen: list[tuple[str, str, str]] = []
    reads = informer.Informer()
    watch = _watch(seen, reads)

    async def test(kube: cluster.Cluster) -> None:
        assert reads.pods("team", "chat") is None  # not listed yet: the caller lists
        task = asyncio.create_task(watch.run(kube))
        await _until(lambda: len(seen) >= 6)
        task.cancel()
        names = [p["metadata"]["name"] for p in reads.pods("team", "chat") or []]
        assert names == ["a", "d"]
        (kept,) = [p for p in reads.pods("team", "chat") or [] if p["metadata"]["name"] == "a"]
        assert kept["metadata"]["resourceVersion"] == "7" and "spec" not in kept  # trimmed
        assert "managedFields" not in kept["metadata"]
        assert [p["metadata"]["name"] for p in reads.pods("team", "other") or []] == ["c"]

    _run(fake, test)
    assert seen[:3] == [("ADDED", "a", "1"), ("ADDED", "b", "2"), ("ADDED", "c", "3")]
    assert seen[3:6] == [("MODIFIED", "a", "7"), ("DELETED", "b", "10"), ("ADDED", "d", "11")]
    lists = [q for q in fake.requests if "watch" not in q]
    assert [q.get("continue") for q in lists] == [None, "2"]  # two pages
    assert all(
        q["labelSelector"] == f"{wire.MANAGED_BY}={wire.PRODUCT},{wire.ENDPOINT}" for q in fake.requests
    )
    watched = [q for q in fake.requests if q.get("watch") == "true"]
    assert [q["resourceVersion"] for q in watched[:3]] == ["100", "9", "11"]
    assert all(q["allowWatchBookmarks"] == "true" for q in watched)


def test_a_410_lists_again_and_reports_what_vanished_meanwhile_as_deleted() -> None:
    """The events between a compacted version and the new listing are lost; the listing tells
    what changed: the vanished pod is reported deleted, the changed one modified, the unchanged
    one not at all."""
    before = [_pod("a", 1), _pod("b", 2), _pod("c", 3)]
    after = [_pod("a", 1), _pod("c", 8)]
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    fake = FakeWatchApi([before, after], [[gone]])
    seen: list[tuple[str, str, str]] = []
    reads = informer.Informer()

    async def test(kube: cluster.Cluster) -> None:
        task = asyncio.create_task(_watch(seen, reads).run(kube))
        await _until(lambda: len(seen) >= 5)
        await asyncio.sleep(0.1)
        task.cancel()

    _run(fake, test)
    assert seen[3:] == [("DELETED", "b", "2"), ("MODIFIED", "c", "8")]
    assert [p["metadata"]["name"] for p in reads.pods("team", "chat") or []] == ["a", "c"]


def test_a_big_event_a_failing_handler_and_a_failing_listing_stop_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An event far longer than a read buffer (one line over many chunks) decodes; a handler
    that raises is logged and the next event still arrives; a listing that fails (500) is
    tried again after the backoff."""
    monkeypatch.setattr(watches, "BACKOFF", (0.01, 0.02))
    big = _pod("a", 5, status={"message": "x" * 300_000})
    fake = FakeWatchApi([[]], [[{"type": "ADDED", "object": big}, {"type": "ADDED", "object": _pod("b", 6)}]])
    fake.list_failures = 2
    seen: list[str] = []

    def on_event(kind: str, body: dict[str, Any]) -> None:
        seen.append(body["metadata"]["name"])
        if body["metadata"]["name"] == "a":
            raise RuntimeError("a handler's bug")

    watch = watches.Watch(cluster.POD, child_watches.OF_ENDPOINT, on_event)

    async def test(kube: cluster.Cluster) -> None:
        task = asyncio.create_task(watch.run(kube))
        await _until(lambda: len(seen) >= 2)
        task.cancel()

    _run(fake, test)
    assert seen == ["a", "b"]
    assert sum("watch" not in q for q in fake.requests) >= 3  # two failed listings, then one


def _scheduled(ctx: context.Context) -> dict[str, list[Any]]:
    queues = {"endpoint": ctx.endpoint_queue, "entry": ctx.entry_queue, "training": ctx.training_queue}
    return {name: list(queue.scheduled) for name, queue in queues.items()}  # type: ignore[union-attr]


def _fire(
    ctx: context.Context, kind: cluster.Kind, labels: dict[str, str], body: dict[str, Any] | None = None
) -> None:
    """Hand one event to every watch of ``kind`` whose selector the labels match."""
    for watch in child_watches.watched(ctx, adapter_config_maps=True):
        wanted = dict(part.partition("=")[::2] for part in watch.selector.split(","))
        if watch.kind == kind and all(k in labels and v in ("", labels[k]) for k, v in wanted.items()):
            meta = {"namespace": "team", "name": "x", "labels": labels, **(body or {}).get("metadata", {})}
            asyncio.run(
                _call(watch.on_event, "MODIFIED", {"kind": kind[1], **(body or {}), "metadata": meta})
            )


async def _call(handler: watches.Handler, kind: str, body: dict[str, Any]) -> None:
    handler(kind, body)  # the debounce queues need a running loop


def test_every_watch_selects_only_what_modelyard_manages_on_the_server() -> None:
    found = {(w.kind[1], w.selector) for w in child_watches.watched(make_context(FakeCluster()), True)}
    assert found == {
        ("Deployment", child_watches.OF_ENDPOINT), ("Service", child_watches.OF_ENDPOINT),
        ("Pod", child_watches.OF_ENDPOINT), ("Pod", child_watches.OF_TRAINING),
        ("Job", child_watches.OF_TRAINING), ("ConfigMap", child_watches.OF_ENDPOINT),
    }  # fmt: skip
    assert all(s.startswith(f"{wire.MANAGED_BY}={wire.PRODUCT},") for _, s in found)


def test_without_adapter_config_maps_no_configmap_is_watched() -> None:
    """The operator has no ConfigMap rights outside its namespace unless the chart opts in."""
    assert all(
        w.kind != cluster.CONFIG_MAP for w in child_watches.watched(make_context(FakeCluster()), False)
    )


@pytest.mark.parametrize("kind", [cluster.DEPLOYMENT, cluster.SERVICE, cluster.POD, cluster.CONFIG_MAP])
def test_an_endpoint_childs_event_wakes_that_endpoint_only(kind: cluster.Kind) -> None:
    ctx = make_context(FakeCluster())
    _fire(ctx, kind, {**MANAGED, wire.ENDPOINT: "chat"})
    assert _scheduled(ctx) == {"endpoint": [("team", "chat")], "entry": [], "training": []}


@pytest.mark.parametrize("kind", [cluster.JOB, cluster.POD])
def test_a_training_childs_event_wakes_that_job_only(kind: cluster.Kind) -> None:
    ctx = make_context(FakeCluster())
    _fire(ctx, kind, {**MANAGED, wire.TRAINING_JOB: "tune"})
    assert _scheduled(ctx) == {"endpoint": [], "entry": [], "training": [("team", "tune")]}


def test_a_deployment_with_every_replica_ready_wakes_its_endpoint_at_once() -> None:
    """Readiness is not coalesced behind a second's wait like the other child events."""
    ctx = make_context(FakeCluster())
    labels = {**MANAGED, wire.ENDPOINT: "chat"}

    def deployment(ready: int, observed: int = 1) -> dict[str, Any]:
        return {"metadata": {"generation": 1}, "spec": {"replicas": 2},
                "status": {"readyReplicas": ready, "observedGeneration": observed}}  # fmt: skip

    for body in (deployment(1), deployment(2, observed=0), deployment(2)):
        _fire(ctx, cluster.DEPLOYMENT, labels, body)
    _fire(ctx, cluster.POD, labels)
    delay = child_watches.CHILD_DELAY
    assert ctx.endpoint_queue.delays == [delay, delay, 0.0, delay]  # type: ignore[union-attr]


def test_the_echo_of_our_own_write_wakes_nothing_a_later_version_does() -> None:
    """The Deployment at the version our create returned is what the reconcile that created it
    saw; the controller's status update after it (a new version) wakes the endpoint."""
    ctx = make_context(FakeCluster())
    ctx.informer.own(cluster.DEPLOYMENT, watches.Store(cluster.DEPLOYMENT))
    labels = {**MANAGED, wire.ENDPOINT: "chat"}
    meta = {"name": "chat", "namespace": "team", "resourceVersion": "5", "labels": labels}
    created = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta}
    ctx.informer.wrote(created)
    (watch,) = [w for w in child_watches.watched(ctx, False) if w.kind == cluster.DEPLOYMENT]
    asyncio.run(_call(watch.on_event, "ADDED", created))
    assert _scheduled(ctx)["endpoint"] == []
    updated = {**created, "metadata": {**created["metadata"], "resourceVersion": "6"}}
    asyncio.run(_call(watch.on_event, "MODIFIED", updated))
    assert _scheduled(ctx)["endpoint"] == [("team", "chat")]
