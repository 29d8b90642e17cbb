"""``GET /api/v1/events``: a server-sent event stream that says when the cache changed.

Each message is ``event: change`` with ``{"version": N, "kinds": [...]}``; clients re-fetch
what they show of those kinds. A burst of changes is coalesced into one message
(``coalesce_s``); an idle stream sends a comment every ``heartbeat_s`` so proxies keep it
open; ``retry: 1000`` makes a browser reconnect within a second. Streams end when the app
shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from modelyard.statusapi import keys


def _message(event: str, version: int, data: dict[str, Any]) -> bytes:
    return f"id: {version}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def stream(request: web.Request) -> web.StreamResponse:
    objects = request.app[keys.CACHE]
    config = request.app[keys.SETTINGS]
    stopping = request.app[keys.STOPPING]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    since = objects.version
    await response.write(b"retry: 1000\n" + _message("hello", since, {"version": since}))
    stop = asyncio.ensure_future(stopping.wait())
    change: asyncio.Future[int] | None = None
    try:
        while not stopping.is_set():
            change = asyncio.ensure_future(objects.wait(since, config.heartbeat_s))
            await asyncio.wait({change, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not change.done():
                change.cancel()
                break
            if change.result() == since:
                await response.write(b": keepalive\n\n")
                continue
            await asyncio.sleep(config.coalesce_s)
            version = objects.version
            await response.write(
                _message("change", version, {"version": version, "kinds": objects.changed_since(since)})
            )
            since = version
    except (ConnectionResetError, ConnectionError):
        pass  # the client left
    finally:
        stop.cancel()
        if change is not None:
            change.cancel()
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response
