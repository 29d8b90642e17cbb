"""``create_app(settings, cache)``: the status API and its dashboard as one aiohttp application.

The host (the operator) feeds ``cache`` from its watch events and serves the app, adding its
own routes (``/metrics``) beside ours if it likes; tests drive the same app with a cache they
fill themselves. Nothing lives at module level: every piece hangs off typed app keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator

from aiohttp import web

from modelyard.statusapi import cache, guard, keys, openapi, routes, settings, traffic

STATIC = pathlib.Path(__file__).with_name("static")


def create_app(config: settings.StatusApiSettings, source: cache.Cache) -> web.Application:
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[guard.guard])
    app[keys.SETTINGS] = config
    app[keys.CACHE] = source
    app[keys.OPENAPI] = openapi.document(routes.ROUTES, token_required=bool(config.token))
    app[keys.STOPPING] = asyncio.Event()
    app[keys.TRAFFIC] = traffic.Traffic(changed=lambda: source.touch("ModelEndpoint"))
    if config.gateway_metrics_urls:
        app.cleanup_ctx.append(_poll_gateways)
    app.on_shutdown.append(_stop_streams)
    for route in routes.ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    app.router.add_get("/", _index)
    app.router.add_static("/static", STATIC, append_version=True)
    return app


async def _poll_gateways(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.SETTINGS]
    task = asyncio.create_task(app[keys.TRAFFIC].poll(config.gateway_metrics_urls, config.traffic_interval_s))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _stop_streams(app: web.Application) -> None:
    app[keys.STOPPING].set()


async def _index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
