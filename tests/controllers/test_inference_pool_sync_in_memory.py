"""How the operator keeps a pool, decided in memory: apply only what changed, delete only its own
pool, never touch another's, and wait out a missing CRD without noise (one error, then one
"installed now" when it comes, which makes every endpoint's pool due)."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import pytest

from modelyard.builders import inference_pool as builder
from modelyard.builders import settings
from modelyard.controllers import cluster, inference_pool, kube_errors

CFG = settings.Settings(inference_pools=settings.InferencePools())
KEY = ("ml", "Org/Chat")
NAME = builder.pool_name("Org/Chat")


class Pools:
    """Only the InferencePool calls, against a dict; ``installed`` says whether the CRD is."""

    def __init__(self) -> None:
        self.installed = True
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[str] = []

    def _check(self, kind: cluster.Kind) -> None:
        assert kind == cluster.INFERENCE_POOL
        if not self.installed:
            raise kube_errors.ResourceNotFoundError(404, "NotFound", "404 page not found")

    async def get(self, kind: cluster.Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self._check(kind)
        found = self.objects.get((namespace or "", name))
        return copy.deepcopy(found) if found else None

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._check((obj["apiVersion"], obj["kind"]))
        meta = obj["metadata"]
        stored = copy.deepcopy(obj)
        stored["metadata"]["uid"] = "pool-uid"
        self.objects[(meta["namespace"], meta["name"])] = stored
        self.writes.append(f"apply {meta['name']}")
        return stored

    async def delete(
        self, kind: cluster.Kind, name: str, namespace: str | None = None, uid: str | None = None
    ) -> bool:
        self._check(kind)
        self.writes.append(f"delete {name}")
        return self.objects.pop((namespace or "", name), None) is not None


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sync(pools: inference_pool.Pools, api: Pools, members: list[tuple[str, str]]) -> bool:
    return asyncio.run(pools.sync(api, CFG, KEY, members))  # type: ignore[arg-type]


def test_a_pool_is_applied_when_it_changes_and_deleted_with_its_last_endpoint() -> None:
    api, pools = Pools(), inference_pool.Pools()
    _sync(pools, api, [("a", "uid-a")])
    _sync(pools, api, [("a", "uid-a")])  # as last applied: no call
    _sync(pools, api, [("a", "uid-a"), ("b", "uid-b")])
    owners = [r["name"] for r in api.objects[("ml", NAME)]["metadata"]["ownerReferences"]]
    assert owners == ["a", "b"]
    _sync(pools, api, [])
    assert api.writes == [f"apply {NAME}", f"apply {NAME}", f"delete {NAME}"]
    assert api.objects == {}


def test_a_same_named_pool_of_someone_else_is_left_alone() -> None:
    api, pools = Pools(), inference_pool.Pools()
    theirs = {"apiVersion": builder.API_VERSION, "kind": "InferencePool",
              "metadata": {"name": NAME, "namespace": "ml", "uid": "theirs"}, "spec": {}}  # fmt: skip
    api.objects[("ml", NAME)] = theirs
    _sync(pools, api, [("a", "uid-a")])
    _sync(pools, api, [])
    assert api.writes == [] and api.objects[("ml", NAME)] == theirs


def test_a_missing_crd_is_one_error_then_one_notice_when_it_comes(caplog: pytest.LogCaptureFixture) -> None:
    api, clock = Pools(), Clock()
    pools = inference_pool.Pools(clock=clock)
    api.installed = False
    with caplog.at_level(logging.INFO, logger=inference_pool.__name__):
        assert _sync(pools, api, [("a", "uid-a")]) is False
        assert _sync(pools, api, [("a", "uid-a")]) is False  # within RETRY_SECONDS: not even asked
        clock.now += inference_pool.RETRY_SECONDS + 1
        assert _sync(pools, api, [("a", "uid-a")]) is False  # still missing: no second error
        api.installed = True
        assert _sync(pools, api, [("a", "uid-a")]) is False  # the next retry is not due yet
        clock.now += inference_pool.RETRY_SECONDS + 1
        assert _sync(pools, api, [("a", "uid-a")]) is True  # there now: every pool is due
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "the InferencePool CRD (inference.networking.k8s.io/v1)" in errors[0]
    assert any("installed now" in r.getMessage() for r in caplog.records)
    assert api.writes == [f"apply {NAME}"]


def test_with_the_option_off_nothing_is_called() -> None:
    api = Pools()
    api.installed = False
    assert asyncio.run(inference_pool.Pools().sync(api, settings.Settings(), KEY, [("a", "u")])) is False  # type: ignore[arg-type]
    assert api.writes == []
