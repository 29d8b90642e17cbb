"""Fixtures for the gateway: fake OpenAI servers on loopback and a gateway in front of them.

Everything runs in one background event loop (:class:`Loop`), so tests stay synchronous and
can use the official ``openai`` client as any user would. A :class:`FakeUpstream` answers
the OpenAI routes and can be told to fail (500), hang, stream slowly, or die mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web

from kit import Loop, install_crds
from modelyard import gateway
from modelyard.gateway import auth, balancer, discovery, routes

T = TypeVar("T")


class FakeUpstream:
    """An OpenAI-compatible server whose behaviour a test sets in :attr:`mode`.

    Modes: ``ok``; ``error`` (500); ``hang`` (never answers); ``slow_first`` (streams after
    ``delay`` seconds); ``die`` (streams two events and half a third, then drops the
    connection; a plain answer: half of it, then the same); ``stall`` (streams two events,
    then sends nothing more); ``slow`` (answers after ``delay`` seconds); ``bad_request`` (400).
    ``/v1/completions`` streams text choices, the chat route deltas, ``/v1/responses`` the
    Responses API's events (and answers a Responses object); any other ``/v1/...`` path answers
    as chat does.
    A stream sends its first event and then waits for :attr:`hold` when a test sets one.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "ok"
        self.delay = 0.0
        self.chunk_delay = 0.0
        self.chunks = 3
        self.hold: threading.Event | None = None
        self.requests: list[dict[str, Any]] = []
        self.disconnects = 0
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for path in ("/chat/completions", "/completions", "/embeddings", "/rerank"):
            app.router.add_post("/v1" + path, self._json)
        app.router.add_post("/v1/audio/transcriptions", self._audio)
        app.router.add_post("/v1/audio/translations", self._audio)
        app.router.add_post("/v1/{path:.+}", self._json)
        return app

    async def _misbehave(self) -> web.Response | None:
        if self.mode == "error":
            return web.json_response({"error": {"message": f"{self.name} is broken"}}, status=500)
        if self.mode == "bad_request":
            return web.json_response(
                {"error": {"message": "bad temperature", "type": "invalid_request_error"}}, status=400
            )
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        return None

    async def _audio(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append({"path": request.path, "headers": dict(request.headers), "form": dict(form)})
        bad = await self._misbehave()
        if bad is not None:
            return bad
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        size = len(upload.file.read())
        return web.json_response({"text": f"{self.name} heard {size} bytes", "model": form["model"]})

    async def _json(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        self.requests.append(
            {"path": request.path, "headers": dict(request.headers), "body": body, "raw": raw}
        )
        bad = await self._misbehave()
        if bad is not None:
            return bad
        if body.get("stream"):
            return await self._stream(request, body)
        if self.mode == "die":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = 200
            await response.prepare(request)
            await response.write(b'{"id": "chatcmpl-1", "choi')
            assert request.transport is not None
            request.transport.abort()
            return response
        usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
        if request.path.endswith("/embeddings"):
            return web.json_response(
                {
                    "object": "list",
                    "model": body["model"],
                    "usage": usage,
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                }
            )
        if request.path.endswith("/responses"):
            return web.json_response(_response(self.name, body["model"], f"hello from {self.name}", 5, 7))
        if request.path.endswith("/rerank"):
            return web.json_response(
                {"model": body["model"], "results": [{"index": 0, "relevance_score": 0.9}]}
            )
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"hello from {self.name}"},
                    }
                ],
                "usage": usage,
            }
        )

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if self.mode == "slow_first":
            await asyncio.sleep(self.delay)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            return await self._events(request, response, body)
        except ConnectionResetError:
            self.disconnects += 1
            raise

    async def _events(
        self, request: web.Request, response: web.StreamResponse, body: dict[str, Any]
    ) -> web.StreamResponse:
        if request.path.endswith("/v1/responses"):
            return await self._response_events(response, body)
        text = request.path.endswith("/v1/completions")
        for i in range(self.chunks):
            piece: dict[str, Any] = (
                {"text": f"{self.name}-{i} "} if text else {"delta": {"content": f"{self.name}-{i} "}}
            )
            chunk = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, **piece, "finish_reason": None}],
            }
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            if self.mode == "stall" and i == 1:
                await asyncio.sleep(3600)
            if self.mode == "die" and i == 1:
                await response.write(b'data: {"id": "chatcmpl-1", "choi')
                assert request.transport is not None
                request.transport.abort()
                return response
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            if i == 0 and self.hold is not None:
                await asyncio.to_thread(self.hold.wait, 60)
        usage = {"prompt_tokens": 3, "completion_tokens": self.chunks, "total_tokens": 3 + self.chunks}
        last = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": body["model"],
            "choices": [],
            "usage": usage,
        }
        await response.write(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _response_events(
        self, response: web.StreamResponse, body: dict[str, Any]
    ) -> web.StreamResponse:
        """The Responses API's stream: named events, no ``[DONE]``; usage in the last one."""
        pieces = [f"{self.name}-{i} " for i in range(self.chunks)]
        opening = _response(self.name, body["model"], "", 0, 0, "in_progress")
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": opening},
            *({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
               "content_index": 0, "delta": piece} for piece in pieces),
            {"type": "response.completed",
             "response": _response(self.name, body["model"], "".join(pieces), 3, self.chunks)},
        ]  # fmt: skip
        for event in events:
            await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        await response.write_eof()
        return response


def _response(
    name: str, model: str, text: str, input_tokens: int, output_tokens: int, status: str = "completed"
) -> dict[str, Any]:
    """A Responses API object with one output message."""
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    return {
        "id": f"resp_{name}",
        "object": "response",
        "created_at": 1,
        "model": model,
        "status": status,
        "output": [message] if text else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }


class Harness:
    """Fake upstreams and gateways on one background loop."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def fake(self, name: str, host: str = "127.0.0.1") -> FakeUpstream:
        upstream = FakeUpstream(name)
        upstream.url = self.loop.serve(upstream.app(), host)
        return upstream

    def gateway(
        self,
        source: discovery.Discovery,
        chooser: balancer.Balancer | None = None,
        **settings: Any,
    ) -> tuple[str, web.Application]:
        # authentication as the source's keys say: on with keys, else off (``--no-auth``), so
        # routing tests need no key; ``auth=True`` tests the gateway without usable keys
        auth_on = bool(source.keys().keys)
        config = gateway.Settings(**{"retry_delay": 0.01, "auth": auth_on, **settings})
        chooser = chooser or balancer.WeightedLeastBusy(config.eject_after, config.eject_cooldown)
        app = gateway.create_app(config, source, chooser)
        return self.loop.serve(app), app


def table(*endpoints: routes.EndpointInfo) -> routes.RouteTable:
    return routes.build_table(endpoints)


def pods(name: str, served: str, *fakes: FakeUpstream, weight: int = 100, **kw: Any) -> routes.EndpointInfo:
    targets = tuple(discovery.pod_target(name, f.url) for f in fakes)
    return routes.EndpointInfo(name, served, weight, targets=targets, **kw)


@pytest.fixture()
def harness() -> Iterator[Harness]:
    loop = Loop()
    try:
        yield Harness(loop)
    finally:
        loop.close()


@pytest.fixture()
def make_table() -> Callable[..., routes.RouteTable]:
    return table


@pytest.fixture()
def make_pods() -> Callable[..., routes.EndpointInfo]:
    return pods


@pytest.fixture()
def key_table() -> Callable[[dict[str, str]], auth.KeyTable]:
    return auth.KeyTable.from_data


@pytest.fixture(scope="module")
def crds(local_cluster: Any) -> None:
    """The CRDs on the local control plane, for the tests that write custom resources by hand."""
    install_crds(local_cluster)
