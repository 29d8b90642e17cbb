"""When the Kubernetes API goes away the gateway keeps its last-known routes, and reconnects.

A fake API server (list + watch of the four kinds the gateway reads) stands in for the real
one so that it can be stopped and started again mid-test.
"""

from __future__ import annotations

import asyncio
import json
import time
import types
from typing import Any

import openai
from aiohttp import web

from modelyard.gateway import kube, kube_discovery


class FakeApi:
    """Serves lists and watches; ``down`` makes every call fail with 503."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {}
        self.version = 1
        self.down = False
        self.watchers: list[asyncio.Queue[dict[str, Any] | None]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._handle)
        return app

    def add(self, path: str, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects.setdefault(path, []).append(obj)
        for queue in self.watchers:
            queue.put_nowait({"path": path, "type": "ADDED", "object": obj})

    def drop_watches(self) -> None:
        for queue in self.watchers:
            queue.put_nowait(None)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            return web.json_response({"message": "unavailable"}, status=503)
        path = "/" + request.match_info["path"]
        if request.query.get("watch") != "1":
            return web.json_response(
                {"items": self.objects.get(path, []), "metadata": {"resourceVersion": str(self.version)}}
            )
        response = web.StreamResponse()
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.watchers.append(queue)
        try:
            while (event := await queue.get()) is not None:
                if event["path"] == path:
                    line = {"type": event["type"], "object": event["object"]}
                    await response.write(json.dumps(line).encode() + b"\n")
        finally:
            self.watchers.remove(queue)
        return response


def _endpoint(name: str, served: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"model": "m", "servedName": served},
        "status": {"phase": "Ready", "servedName": served},
    }


def _slice(endpoint: str, url: str) -> dict[str, Any]:
    host, port = url.split("://")[1].split(":")
    return {
        "metadata": {
            "name": f"{endpoint}-x",
            "namespace": "ns",
            "labels": {"modelyard.io/endpoint": endpoint},
        },
        "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": int(port)}],
    }


ENDPOINTS = "/apis/modelyard.io/v1alpha1/modelendpoints"
SLICES = "/apis/discovery.k8s.io/v1/endpointslices"


def test_routes_survive_an_api_outage_and_resume(harness: Any) -> None:
    fake_api = FakeApi()
    api_url = harness.loop.serve(fake_api.app())
    pod = harness.fake("pod")
    fake_api.add(ENDPOINTS, _endpoint("llama", "llama"))
    fake_api.add(SLICES, _slice("llama", pod.url))

    configuration = types.SimpleNamespace(
        host=api_url,
        ssl_ca_cert=None,
        cert_file=None,
        key_file=None,
        verify_ssl=True,
        get_api_key_with_prefix=lambda name, alias=None: None,
        refresh_api_key_hook=None,
    )
    source = kube_discovery.KubeDiscovery(kube.KubeApi(configuration, "ns"), None, backoff=(0.05, 0.2))
    url, _ = harness.gateway(source)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=10)

    def chat(model: str) -> str:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
        return reply.choices[0].message.content or ""

    deadline = time.monotonic() + 10
    while not (source.synced and source.table().ready_names() == ["llama"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert chat("llama") == "hello from pod"

    # the API goes away: watches break, relists fail; the routes stay
    fake_api.down = True
    harness.loop.run(_call(fake_api.drop_watches))
    time.sleep(0.6)  # several failed reconnects
    assert source.table().ready_names() == ["llama"]
    assert chat("llama") == "hello from pod"

    # it comes back with a new endpoint: the gateway relists and serves it
    fake_api.down = False
    harness.loop.run(_call(lambda: fake_api.add(ENDPOINTS, _endpoint("small", "small"))))
    harness.loop.run(_call(lambda: fake_api.add(SLICES, _slice("small", pod.url))))
    deadline = time.monotonic() + 5
    while source.table().ready_names() != ["llama", "small"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert chat("small") == "hello from pod"


async def _call(func: Any) -> None:
    func()
