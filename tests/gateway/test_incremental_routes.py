"""A route change costs what it touches, and gives exactly the table a full rebuild gives.

Pure logic, no API server: the discovery's informer caches are filled and changed by hand, as
their watches would (``Informer._apply``), and the upstream key Secrets' informers are fakes
whose listing the test delivers. After every few random changes (endpoints, entries, slices,
key Secrets, created, changed, relabelled and deleted), the incrementally kept table, key
table, conflicts and unreadable keys must equal those of a fresh discovery that reads the same
caches from scratch.
"""

from __future__ import annotations

import asyncio
import copy
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client

from modelyard.api import wire
from modelyard.gateway import discovery, endpoint_info, kube, kube_discovery, routes

NAMESPACES = ("a", "b", "c")
SERVED = ("m0", "m1", "m2")
ENTRIES = ("e0", "e1", "e2", "e3")
ENDPOINTS = tuple(f"{ns}/ep{i}" for ns in NAMESPACES for i in range(3))
UPSTREAM_SECRETS = (("a", "k0"), ("b", "k1"), ("c", "forbidden"))
FORBIDDEN = {("c", "forbidden")}


class World:
    """The upstream key Secrets as the API server has them (the forbidden one: a 403)."""

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, Any] | None] = {}


class FakeDiscovery(kube_discovery.KubeDiscovery):
    """Informers that never connect: the test changes their caches and calls ``rebuild``."""

    def __init__(self, world: World, like: FakeDiscovery | None = None) -> None:
        self.world, self.like = world, like
        configuration = client.Configuration()
        configuration.host = "http://127.0.0.1:9"  # never contacted
        super().__init__(kube.KubeApi(configuration, "gw"), keys_secret="keys")
        for informer in self._base():
            informer.synced = True
            _quiet(informer)

    def _secret_informer(self, namespace: str, name: str) -> kube.Informer:
        informer = kube.Informer(self.api, f"/api/v1/namespaces/{namespace}/secrets", lambda: None)
        informer.start = lambda: None  # type: ignore[method-assign]
        twin = self.like._secrets.get((namespace, name)) if self.like is not None else None
        if twin is not None:  # the oracle starts where the incremental discovery's informer is
            informer.store, informer.synced, informer.error = dict(twin.store), twin.synced, twin.error
        return informer


def _quiet(informer: kube.Informer) -> None:
    informer._on_change = lambda: None


def _event(informer: kube.Informer, kind: str, obj: dict[str, Any]) -> None:
    _quiet(informer)
    informer._apply({"type": kind, "object": copy.deepcopy(obj)}, "")


def _version(rng: random.Random) -> str:
    return str(rng.randrange(10**9))


def _entry(rng: random.Random, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "source": {"provider": "huggingface", "repo": f"org/{name}"},
        "category": "text-llm",
    }
    if rng.random() < 0.7:
        spec["servedName"] = rng.choice(SERVED)
    if rng.random() < 0.3:
        spec["servingNamespaces"] = sorted(rng.sample(NAMESPACES, rng.randint(1, 2)))
    if rng.random() < 0.4:
        namespace, secret = rng.choice(UPSTREAM_SECRETS)
        spec.update(source={"provider": "upstream"}, runtime={"engine": "upstream"}, upstream={
            "baseUrl": f"https://{name}.example/v1", "model": f"remote-{name}",
            "apiKeySecretRef": {"name": secret, "key": "apiKey", "namespace": namespace},
        })  # fmt: skip
    else:
        spec["runtime"] = {"engine": "vllm"}
    return {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEntry",
            "metadata": {"name": name, "resourceVersion": _version(rng)}, "spec": spec}  # fmt: skip


def _endpoint(rng: random.Random, key: str) -> dict[str, Any]:
    namespace, name = key.split("/")
    spec: dict[str, Any] = {"model": rng.choice(ENTRIES), "weight": rng.choice((0, 100, 200)),
                            "replicas": rng.choice((0, 1, 2))}  # fmt: skip
    if rng.random() < 0.4:
        spec["servedName"] = rng.choice(SERVED)
    if rng.random() < 0.3:
        spec["fallback"] = rng.sample(SERVED, rng.randint(1, 2))
    if rng.random() < 0.2:
        spec["shareServedNameWith"] = [rng.choice(NAMESPACES)]
    if rng.random() < 0.2:
        spec["autoscaling"] = {"minReplicas": 0, "maxReplicas": 2}
    if rng.random() < 0.05:
        spec["weight"] = -1  # does not validate: never routed
    status: dict[str, Any] = {"phase": rng.choice(("Ready", "Degraded", "Progressing", "Pending", "Failed"))}
    if rng.random() < 0.3:
        status["reason"] = rng.choice(("ScaledToZero", "Unschedulable"))
        status["message"] = "why"
    if rng.random() < 0.3:
        status["engine"] = rng.choice(("vllm", "upstream"))
    created = f"2026-01-0{rng.randint(1, 3)}T00:00:00Z"
    return {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": _version(rng),
                         "creationTimestamp": created},
            "spec": spec, "status": status}  # fmt: skip


def _slice(rng: random.Random, key: str) -> dict[str, Any]:
    namespace, name = key.split("/")
    endpoint = rng.choice(ENDPOINTS).split("/")[1] if rng.random() < 0.2 else name.split("-")[0]
    pods = [
        {"addresses": [f"10.0.{rng.randrange(4)}.{rng.randrange(250)}"],
         "conditions": {"ready": rng.random() < 0.7, **({"terminating": True} if rng.random() < 0.1 else {})}}
        for _ in range(rng.randint(0, 3))
    ]  # fmt: skip
    ports = [{"name": "http", "port": 8000}] if rng.random() < 0.9 else []
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": _version(rng),
                         "labels": {wire.ENDPOINT: endpoint}},
            "ports": ports, "endpoints": pods}  # fmt: skip


def _keys_secret(rng: random.Random) -> dict[str, Any]:
    data = {"alice": "sk-alice", "alice.namespaces": rng.choice(NAMESPACES), "bob": "sk-bob"}
    if rng.random() < 0.5:
        data["bob.models"] = rng.choice(SERVED)
    if rng.random() < 0.2:
        data["carol.namespaces"] = "a"  # a setting of no key: a problem, logged
    return {
        "metadata": {"name": "keys", "namespace": "gw", "resourceVersion": _version(rng)},
        "stringData": data,
    }


def _change(rng: random.Random, source: FakeDiscovery, world: World) -> None:
    """One random change, as the watches would deliver it."""
    what = rng.random()
    if what < 0.3:
        informer, key, make = source.endpoints, rng.choice(ENDPOINTS), _endpoint
    elif what < 0.45:
        informer, key, make = source.entries, rng.choice(ENTRIES), _entry
    elif what < 0.75:
        slice_key = f"{rng.choice(ENDPOINTS)}-s{rng.randrange(2)}"
        informer, key, make = source.slices, slice_key, _slice
    elif what < 0.82:
        assert source.key_secret is not None
        informer, key, make = source.key_secret, "gw/keys", lambda r, _: _keys_secret(r)
    elif what < 0.92:
        ref = rng.choice(UPSTREAM_SECRETS[:2])
        meta = {"name": ref[1], "namespace": ref[0], "resourceVersion": _version(rng)}
        secret = {"metadata": meta, "stringData": {"apiKey": f"sk-{rng.randrange(5)}"}}
        if rng.random() < 0.2:
            secret = None
        world.secrets[ref] = secret
        live = source._secrets.get(ref)
        if live is not None and live.synced:
            old = next(iter(live.store.values()), None)
            if secret is not None:
                _event(live, "MODIFIED", secret)
            elif old is not None:
                _event(live, "DELETED", old)
        return
    elif what < 0.97:
        for ref, live in source._secrets.items():  # pending listings of key Secrets answer
            if live.synced or live.error is not None:
                continue
            if ref in FORBIDDEN:
                live.error = "403: forbidden"
                continue
            secret = world.secrets.get(ref)
            live.store = {f"{ref[0]}/{ref[1]}": copy.deepcopy(secret)} if secret else {}
            live.synced, live.relisted = True, True
        return
    else:
        informer = rng.choice(source._base())  # a relist (after a 410 Gone): everything re-read
        informer.store, informer.relisted = dict(informer.store), True
        return
    if key in informer.store and rng.random() < 0.25:
        _event(informer, "DELETED", informer.store[key])
    else:
        obj = make(rng, key)
        _event(informer, "MODIFIED" if key in informer.store else "ADDED", obj)


def _from_scratch(source: FakeDiscovery, world: World) -> FakeDiscovery:
    oracle = FakeDiscovery(world, like=source)
    for mine, theirs in zip(source._base(), oracle._base(), strict=True):
        theirs.store = copy.deepcopy(mine.store)
    oracle._secrets = {ref: oracle._secret_informer(*ref) for ref in source._secrets}
    oracle.rebuild()
    return oracle


def _assert_same(source: FakeDiscovery, oracle: FakeDiscovery) -> None:
    assert dict(source.table().models) == dict(oracle.table().models)
    assert source.table().unreadable_keys == oracle.table().unreadable_keys
    assert source.keys() == oracle.keys()
    assert source._conflicts == oracle._conflicts
    assert dict(source._owners.ownership.owners) == dict(oracle._owners.ownership.owners)
    assert dict(source._owners.ownership.verdicts) == dict(oracle._owners.ownership.verdicts)
    assert source._secrets.keys() == oracle._secrets.keys()


async def _run(seed: int, changes: int) -> int:
    rng, world = random.Random(seed), World()
    source = FakeDiscovery(world)
    source.rebuild()
    routed = 0
    for _ in range(changes):
        for _ in range(rng.randint(1, 3)):
            _change(rng, source, world)
        source.rebuild()
        _assert_same(source, _from_scratch(source, world))
        routed += len(source.table().ready_names())
    return routed


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_incremental_rebuilds_equal_a_full_rebuild(seed: int) -> None:
    asyncio.run(_run(seed, changes=40))


def test_random_changes_do_route_something() -> None:
    """The generator is not vacuous: served names become routable along the way."""
    assert sum(asyncio.run(_run(seed, changes=60)) for seed in range(5)) > 0


def test_a_change_rebuilds_only_the_models_it_touches() -> None:
    """One pod of one served name: the other served names keep their very Model objects."""
    infos = [
        routes.EndpointInfo(
            name, served, 100, True, (), (discovery.pod_target(name, f"http://10.0.0.{i}:8000"),)
        )
        for served in SERVED
        for i in range(2)
        for name in [f"ns/{served}-{i}"]
    ]
    index = routes.RouteIndex()
    for info in infos:
        index.put(info.name, info)
    before = index.table()
    changed = routes.EndpointInfo("ns/m1-0", "m1", 100, True, (), ())
    index.put(changed.name, changed)
    after = index.table()
    assert after.models["m1"] == routes.build_table([changed, infos[3]]).models["m1"]
    assert after.models["m1"].endpoint("ns/m1-0") is None
    assert after.models["m0"] is before.models["m0"] and after.models["m2"] is before.models["m2"]
    old = before.models["m1"].endpoint("ns/m1-0")
    assert old is not None and old.targets == infos[2].targets  # a snapshot never changes


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_route_index_equals_build_table(seed: int) -> None:
    rng = random.Random(seed)
    index, current = routes.RouteIndex(), {}
    for _ in range(30):
        name = f"{rng.choice(NAMESPACES)}/ep{rng.randrange(4)}"
        if rng.random() < 0.25:
            current.pop(name, None)
            index.put(name, None)
        else:
            targets = tuple(
                discovery.pod_target(name, f"http://10.0.0.{p}:8000") for p in range(rng.randrange(3))
            )
            info = routes.EndpointInfo(
                name, rng.choice(SERVED), rng.choice((0, 100)), rng.random() < 0.7,
                tuple(rng.sample(SERVED, rng.randrange(3))), targets, None, rng.random() < 0.3,
                "Failed" if rng.random() < 0.1 else None,
            )  # fmt: skip
            current[name] = info
            index.put(name, info)
        if rng.random() < 0.5:
            assert index.table().models == routes.build_table(current.values()).models
    assert index.table().models == routes.build_table(current.values()).models


def test_pod_urls_list_slices_in_name_order_and_name_every_endpoint_they_change() -> None:
    rng = random.Random(3)
    store: dict[str, dict[str, Any]] = {}
    pods = endpoint_info.PodIndex()
    seen: dict[str, list[str]] = {}
    for _ in range(400):
        batch: list[str] = []
        for _ in range(rng.randint(1, 3)):  # a batch, as between two rebuilds
            key = f"{rng.choice(ENDPOINTS)}-s{rng.randrange(3)}"
            batch.append(key)
            if key in store and rng.random() < 0.3:
                del store[key]
            else:
                store[key] = _slice(rng, key)
        touched: set[str] = set()
        for key in rng.sample(batch, len(batch)):  # in any order, present or gone
            touched |= pods.update(key, store.get(key))
        expected: dict[str, list[str]] = {}
        for _, obj in sorted(store.items()):
            endpoint, urls = endpoint_info.slice_urls(obj)
            if endpoint is not None:
                expected.setdefault(endpoint, []).extend(urls)
        assert {e: pods.urls(e) for e in {*expected, *seen}} == {
            e: expected.get(e, []) for e in {*expected, *seen}
        }
        assert {e for e in {*expected, *seen} if expected.get(e, []) != seen.get(e, [])} <= touched
        seen = expected
