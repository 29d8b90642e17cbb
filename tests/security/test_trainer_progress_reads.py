"""The operator reads a running trainer's ``GET /progress`` — an answer from a pod that runs the
tenant's image — bounded in size and in time: an endless, oversized or trickling answer is
dropped, and the operator stops reading it (the hostile server sends little before the
connection is closed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

import kit
from modelyard.controllers import training_job

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CHUNK = b" " * 65536


async def _fetch_from(handler: Handler) -> Any:
    app = web.Application()
    app.router.add_get("/progress", handler)
    async with kit.aiohttp_port(app) as port:
        # a hang guard only: the operator's own bound is far shorter
        return await asyncio.wait_for(training_job._fetch_progress(f"http://127.0.0.1:{port}/progress"), 60)


def test_an_endless_answer_is_cut_off_after_a_few_kilobytes() -> None:
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"step": 1, "pad": "')
        try:
            while True:
                await response.write(CHUNK)
                sent += len(CHUNK)
        except (ConnectionResetError, RuntimeError, OSError):
            return response

    assert asyncio.run(_fetch_from(endless)) is None
    # The operator read at most PROGRESS_MAX_BYTES and hung up: what the server could push
    # before it noticed is socket buffers, not the 3 s of a loopback stream (gigabytes).
    assert sent < 64 * 1024 * 1024, f"the server sent {sent} bytes before the operator hung up"


def test_an_answer_past_the_limit_is_dropped_and_a_small_one_still_read() -> None:
    body = json.dumps({"step": 7, "totalSteps": 10, "pad": "x" * (training_job.PROGRESS_MAX_BYTES + 1)})

    async def padded(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, content_type="application/json")

    async def chunked(request: web.Request) -> web.StreamResponse:  # no Content-Length to go by
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(body.encode())
        return response

    async def fine(request: web.Request) -> web.StreamResponse:
        return web.json_response({"step": 3, "totalSteps": 9, "loss": 1.5, "injected": "x"})

    assert asyncio.run(_fetch_from(padded)) is None
    assert asyncio.run(_fetch_from(chunked)) is None
    assert asyncio.run(_fetch_from(fine)) == {"step": 3, "totalSteps": 9, "loss": 1.5}


def test_a_deep_or_trickling_answer_ends_without_an_error() -> None:
    async def nested(request: web.Request) -> web.StreamResponse:
        return web.Response(text="[" * 15000, content_type="application/json")

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            await response.write(b'{"step": 1')
            for _ in range(600):
                await asyncio.sleep(0.5)
                await response.write(b" ")
        except (ConnectionResetError, RuntimeError, OSError):
            pass
        return response

    assert asyncio.run(_fetch_from(nested)) is None  # was a RecursionError out of the reconcile
    assert asyncio.run(_fetch_from(trickle)) is None  # the 3 s bound of the whole exchange
