"""The adapter sync of a ModelEndpoint reconcile (controllers/adapters.py) against an in-memory
cluster and FakeRuntime: two small aiohttp servers (one per "pod", on 127.0.0.1 and 127.0.0.2)
that implement the runtime side of the live-adapter contract (/tmp/adapter-contract.md:
load/unload with vLLM's bodies, ``GET /v1/adapters``, or vLLM's ``GET /v1/models``). The real
runtime is exercised by test_live_adapters_on_cluster.py."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from fakecluster import FakeCluster, config_map, entry, make_context

from modelyard.controllers import cluster, context, model_endpoint

TEAM = "team"
QWEN3_CONFIG = {"name": "qwen3-config", "key": "config.json"}


class FakeRuntime:
    """The contract's runtime API over an in-memory set; paths under /missing fail to load."""

    def __init__(self, vllm: bool = False, max_adapters: int = 8) -> None:
        self.vllm = vllm
        self.max_adapters = max_adapters
        self.loaded: dict[str, str] = {}
        self.errors: dict[str, tuple[str, str]] = {}
        self.calls: list[tuple[str, str]] = []
        self.app = web.Application()
        self.app.router.add_get("/v1/adapters", self.adapters)
        self.app.router.add_get("/v1/models", self.models)
        self.app.router.add_post("/v1/load_lora_adapter", self.load)
        self.app.router.add_post("/v1/unload_lora_adapter", self.unload)

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response(
            {"error": {"message": message, "type": "invalid_request_error"}}, status=status
        )

    async def adapters(self, request: web.Request) -> web.Response:
        if self.vllm:
            return self._error(404, "Not Found")  # vLLM has no such route
        return web.json_response(
            {
                "loaded": [{"name": n, "path": p} for n, p in sorted(self.loaded.items())],
                "errors": [{"name": n, "path": p, "message": m} for n, (p, m) in sorted(self.errors.items())],
                "maxAdapters": self.max_adapters,
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        data = [{"id": "base", "object": "model"}]
        data += [
            {"id": n, "object": "model", "parent": "base", "root": p} for n, p in sorted(self.loaded.items())
        ]
        return web.json_response({"object": "list", "data": data})

    async def load(self, request: web.Request) -> web.Response:
        body = await request.json()
        name, path = body["lora_name"], body["lora_path"]
        self.calls.append(("load", name))
        if self.loaded.get(name) == path:
            return web.json_response({"status": "loaded", "lora_name": name})
        if path.startswith("/missing"):
            self.errors[name] = (path, f"{path}: no adapter_config.json there (not a peft adapter)")
            return self._error(400, self.errors[name][1])
        if len(self.loaded) >= self.max_adapters:
            return self._error(409, f"maxAdapters ({self.max_adapters}) reached")
        self.loaded[name] = path
        self.errors.pop(name, None)
        return web.json_response({"status": "loaded", "lora_name": name})

    async def unload(self, request: web.Request) -> web.Response:
        name = (await request.json())["lora_name"]
        self.calls.append(("unload", name))
        if self.loaded.pop(name, None) is None:
            return self._error(404, f"adapter {name!r} is not loaded")
        return web.json_response({"status": "unloaded", "lora_name": name})


@contextlib.asynccontextmanager
async def _pods(fake: FakeCluster, ctx: context.Context, runtimes: list[FakeRuntime]) -> AsyncIterator[None]:
    runners = []
    port = 0
    for i, runtime in enumerate(runtimes):
        runner = web.AppRunner(runtime.app)
        await runner.setup()
        site = web.TCPSite(runner, f"127.0.0.{i + 1}", port)
        await site.start()
        port = port or runner.addresses[0][1]
        runners.append(runner)
        fake.put(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"chat-{i}",
                    "namespace": TEAM,
                    "labels": {"modelyard.io/endpoint": "chat"},
                },
                "spec": {},
                "status": {
                    "podIP": f"127.0.0.{i + 1}",
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
    ctx.settings = dataclasses.replace(ctx.settings, runtime_port=port, adapter_config_maps=True)
    try:
        yield
    finally:
        for runner in runners:
            await runner.cleanup()


@pytest.fixture(autouse=True)
def _status_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """These endpoints are starting (pods Ready, Deployment not rolled out): write their status
    at the first reconcile, not after a start's quiet (test_endpoint_reconcile_in_memory.py)."""
    monkeypatch.setattr(context, "CREATED_QUIET", 0.0)


def _endpoint(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "chat", "namespace": TEAM},
        "spec": {"model": "qwen3", "replicas": 2, **spec},
    }


async def _status(ctx: context.Context) -> dict[str, Any]:
    await model_endpoint.reconcile(ctx, (TEAM, "chat"))
    found = await ctx.cluster.get(cluster.MODEL_ENDPOINT, "chat", TEAM)
    return (found or {}).get("status") or {}


def _fake(*objects: dict[str, Any]) -> FakeCluster:
    return FakeCluster(config_map("qwen3-config"), entry("qwen3", QWEN3_CONFIG), *objects)


def test_without_adapter_config_maps_the_set_is_pushed_and_no_configmap_is_written() -> None:
    """The default (the chart's operator.adapterConfigMaps off): no ConfigMap rights are needed."""
    fake = _fake(_endpoint(adapters=[{"name": "a", "uri": "file:///srv/a"}]))
    ctx = make_context(fake)
    runtimes = [FakeRuntime(False)]

    async def run() -> None:
        async with _pods(fake, ctx, runtimes):
            ctx.settings = dataclasses.replace(ctx.settings, adapter_config_maps=False)
            status = await _status(ctx)
            assert runtimes[0].loaded == {"a": "/srv/a"} and status["adaptersReady"] == "1/1"
            assert await fake.get(cluster.CONFIG_MAP, "chat-adapters", TEAM) is None

    asyncio.run(run())


@pytest.mark.parametrize("vllm", [False, True], ids=["transformers", "vllm"])
def test_adapters_are_pushed_to_every_ready_pod_and_reported_per_adapter(vllm: bool) -> None:
    fake = _fake(_endpoint(engine="vllm" if vllm else None, adapters=[{"name": "a", "uri": "file:///srv/a"}]))
    ctx = make_context(fake)
    runtimes = [FakeRuntime(vllm), FakeRuntime(vllm)]

    async def run() -> None:
        async with _pods(fake, ctx, runtimes):
            status = await _status(ctx)
            assert [r.loaded for r in runtimes] == [{"a": "/srv/a"}, {"a": "/srv/a"}]
            assert status["adapters"] == [
                {"name": "a", "source": "spec", "path": "/srv/a", "pods": ["chat-0", "chat-1"], "ready": True}
            ]
            assert status["adaptersReady"] == "1/1"
            cm = await fake.get(cluster.CONFIG_MAP, "chat-adapters", TEAM)
            assert cm is not None and '"path": "/srv/a"' in cm["data"]["adapters.json"]

            # a second adapter, then the first removed: one load, one unload per pod, no restart
            body = await fake.get(cluster.MODEL_ENDPOINT, "chat", TEAM)
            assert body is not None
            body["spec"]["adapters"] = [{"name": "b", "uri": "file:///srv/b"}]
            fake.put(body)
            status = await _status(ctx)
            assert [r.loaded for r in runtimes] == [{"b": "/srv/b"}, {"b": "/srv/b"}]
            assert [r.calls for r in runtimes] == [[("load", "a"), ("unload", "a"), ("load", "b")]] * 2
            assert [a["name"] for a in status["adapters"]] == ["b"] and status["adaptersReady"] == "1/1"

            # nothing changed: nothing is sent again
            await _status(ctx)
            assert all(len(r.calls) == 3 for r in runtimes)

    asyncio.run(run())


def test_a_bad_adapter_carries_the_runtimes_message_and_is_not_resent() -> None:
    fake = _fake(
        _endpoint(
            adapters=[{"name": "ok", "uri": "file:///srv/ok"}, {"name": "bad", "uri": "file:///missing/x"}]
        )
    )
    ctx = make_context(fake)
    runtimes = [FakeRuntime(), FakeRuntime()]

    async def run() -> None:
        async with _pods(fake, ctx, runtimes):
            status = await _status(ctx)
            bad = next(a for a in status["adapters"] if a["name"] == "bad")
            assert bad["reason"] == "AdapterLoadFailed" and bad["ready"] is False and bad["pods"] == []
            assert "no adapter_config.json" in bad["message"]
            assert status["adaptersReady"] == "1/2"
            await _status(ctx)
            assert all(r.calls.count(("load", "bad")) == 1 for r in runtimes)

    asyncio.run(run())


def test_max_adapters_is_an_explicit_error_not_an_eviction() -> None:
    names = [{"name": f"a{i}", "uri": f"file:///srv/a{i}"} for i in range(3)]
    fake = _fake(_endpoint(adapters=names, maxAdapters=2))
    ctx = make_context(fake)
    runtimes = [FakeRuntime(max_adapters=2)]

    async def run() -> None:
        async with _pods(fake, ctx, runtimes):
            status = await _status(ctx)
            assert runtimes[0].loaded == {"a0": "/srv/a0", "a1": "/srv/a1"}
            last = status["adapters"][2]
            assert last["reason"] == "AdapterLoadFailed" and "maxAdapters (2) reached" in last["message"]

    asyncio.run(run())


def test_a_succeeded_serve_on_job_is_loaded_and_gets_served_at() -> None:
    job = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "tune", "namespace": TEAM},
        "spec": {
            "model": "qwen3",
            "dataset": {"uri": "file:///data/train.jsonl"},
            "output": {"uri": "file:///out/tune", "serveOn": {"endpoint": "chat"}},
        },
        "status": {"phase": "Succeeded"},
    }
    fake = _fake(_endpoint(), job)
    ctx = make_context(fake)
    runtimes = [FakeRuntime()]

    async def run() -> None:
        async with _pods(fake, ctx, runtimes):
            status = await _status(ctx)
            assert runtimes[0].loaded == {"tune": "/out/tune"}
            assert status["adapters"][0]["source"] == "trainingjob tune"
            done = await fake.get(cluster.TRAINING_JOB, "tune", TEAM)
            assert done is not None and done["status"]["servedAt"] and done["status"]["servedName"] == "tune"

    asyncio.run(run())
