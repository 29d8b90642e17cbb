"""The least an aiohttp proxy can do, as a benchmark reference (not a gateway): no auth, no
metrics, no routing, no retries, no stream handling of its own.

Each POST is read whole, sent to ``--upstream`` with aiohttp's client (one pooled session,
the same settings as modelyard's gateway) and its answer relayed: a plain answer whole, an
event stream chunk by chunk. On uvloop when it is installed, like the gateway. What this
costs per request is the floor of any gateway built on aiohttp's server and client;
``gateway_bench.py --targets ...,aiohttp-bare`` measures it beside the others.

``--client lean`` sends with the gateway's lean upstream client (``modelyard.gateway.lean``)
instead of aiohttp's: the floor of the gateway as it is built now, aiohttp's server and the
lean client (``--targets ...,lean-bare``).

    python benchmarks/bare_aiohttp_proxy.py --port 9400 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
LEAN = web.AppKey("lean", object)
UPSTREAM = web.AppKey("upstream", str)


async def _forward_lean(request: web.Request) -> web.StreamResponse:
    from modelyard.gateway import lean

    body = await request.read()
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
    place = lean.address(request.app[UPSTREAM] + request.path)
    assert place is not None
    client = request.app[LEAN]
    assert isinstance(client, lean.Client)
    upstream = await client.post(place, body, headers)
    if upstream.content_type != "text/event-stream":
        chunks = []
        while chunk := await upstream.readany():
            chunks.append(chunk)
        upstream.release()
        return web.Response(status=upstream.status, body=b"".join(chunks), content_type=upstream.content_type)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    while chunk := await upstream.readany():
        await response.write(chunk)
    upstream.release()
    await response.write_eof()
    return response


async def _forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
    url = request.app[UPSTREAM] + request.path
    async with request.app[SESSION].post(url, data=body, headers=headers) as upstream:
        if upstream.content_type != "text/event-stream":
            data = await upstream.read()
            return web.Response(status=upstream.status, body=data, content_type=upstream.content_type)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        while chunk := await upstream.content.readany():
            await response.write(chunk)
        await response.write_eof()
        return response


async def _session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60)
    app[SESSION] = aiohttp.ClientSession(
        connector=connector, skip_auto_headers=("User-Agent",), cookie_jar=aiohttp.DummyCookieJar()
    )
    yield
    await app[SESSION].close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--upstream", required=True, help="base URL of the model server")
    parser.add_argument("--client", choices=("aiohttp", "lean"), default="aiohttp")
    args = parser.parse_args()
    app = web.Application()
    app[UPSTREAM] = args.upstream.rstrip("/")
    if args.client == "lean":
        from modelyard.gateway import lean

        app[LEAN] = lean.Client(connect_timeout=5)
        app.router.add_post("/v1/{path:.+}", _forward_lean)
    else:
        app.cleanup_ctx.append(_session)
        app.router.add_post("/v1/{path:.+}", _forward)
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, loop=loop, backlog=2048)


if __name__ == "__main__":
    main()
