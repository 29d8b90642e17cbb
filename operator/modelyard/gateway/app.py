"""The gateway's aiohttp application: the OpenAI routes, health, metrics, and the guards.

``create_app(settings, discovery, balancer)`` wires everything by typed app keys; nothing
lives at module level. Before a request is forwarded it is authenticated (a bearer key; with
no usable key configured every request is a 401 saying so, unless ``--no-auth``), held to its
key's requests and tokens per minute (429 with ``Retry-After``, :mod:`~.ratelimit`), bounded
(body size → 413, a body not sent within ``--body-timeout`` → 408, requests in flight over
``--max-in-flight`` → 429, per-key concurrency → 429; all bounds are listed in
:mod:`modelyard.gateway.limits`), its Content-Type checked (415, the runtime's rule:
:func:`modelyard.api.openai.media_type_error`), and its model checked (unknown → 404, not
allowed for the key → 403). Each check and its refusal is in :mod:`~.guards`, their order in
:mod:`~.handler`; everything else is :mod:`modelyard.gateway.proxy`. Errors under /v1 take the
OpenAI shape in :mod:`~.dispatch`.

Besides the OpenAI paths it knows (:data:`OPENAI_PATHS`), the gateway relays any other POST
under ``/v1/`` whose JSON body names a ``model``, to that model's endpoints by the same path
(auth, bounds, retries, weighted split, metrics and streaming as for chat), so a new OpenAI
path works without a gateway release; such a path without a ``model`` is a 404 naming it.
``/v1/models`` stays the gateway's own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from modelyard.api import openai
from modelyard.gateway import (
    auth,
    balancer,
    discovery,
    dispatch,
    guards,
    handler,
    hold,
    lean,
    limits,
    metrics,
    podload,
    proxy,
    ratelimit,
    settings,
    upstream,
)

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", settings.Settings)
DISCOVERY = web.AppKey("discovery", discovery.Discovery)
BALANCER = web.AppKey("balancer", balancer.Balancer)
METRICS = web.AppKey("metrics", metrics.Metrics)
LIMITER = web.AppKey("limiter", auth.ConcurrencyLimiter)
RATES = web.AppKey("rates", ratelimit.RateLimiter)
IN_FLIGHT = web.AppKey("in_flight", limits.InFlight)
PROXY = web.AppKey("proxy", proxy.Proxy)
HOLDS = web.AppKey("holds", hold.Holds)
POD_LOAD = web.AppKey("pod_load", podload.PodLoad)
ROUTES = web.AppKey("routes", handler.OpenAIRoutes)

# OpenAI paths relayed as they are (the suffix after /v1 is appended to a target's base URL).
OPENAI_PATHS = (
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/audio/transcriptions",
    "/audio/translations",
    "/rerank",
    "/responses",
)


def create_app(
    config: settings.Settings,
    source: discovery.Discovery,
    chooser: balancer.Balancer,
    *,
    metrics_route: bool = True,
    pod_load: podload.PodLoad | None = None,
) -> web.Application:
    """The gateway; ``metrics_route=False`` leaves /metrics to a port of its own (the CLI's
    ``--metrics-port``); ``pod_load`` (the one ``chooser`` reads) is scraped while it runs, noting
    ``chooser``'s own in-flight count to each pod with each figure."""
    app = web.Application(client_max_size=config.max_body_bytes + 1)
    dispatch.install(app)  # errors in the OpenAI shape, without a middleware chain
    app[SETTINGS] = config
    app[DISCOVERY] = source
    app[BALANCER] = chooser
    app[METRICS] = metrics.Metrics()
    app[METRICS].watch_routes(source.table)
    app[METRICS].watch_spills(chooser.spills)
    if pod_load is not None:
        stats = app[METRICS]
        pod_load.on_error(lambda endpoint: stats.child(stats.pod_metrics_errors, endpoint).inc())
        stats.watch_pods(pod_load.known)
        app[POD_LOAD] = pod_load
    app[HOLDS] = hold.Holds(config, app[METRICS], source.table)
    source.on_change(app[HOLDS].table_changed)
    app[LIMITER] = auth.ConcurrencyLimiter(config.max_concurrency_per_key)
    app[RATES] = ratelimit.RateLimiter()
    in_flight = app[IN_FLIGHT] = limits.InFlight(config.max_in_flight)
    app[METRICS].requests_in_flight.set_function(lambda: in_flight.current)
    handlers = app[ROUTES] = handler.OpenAIRoutes(
        config, source, app[METRICS], app[LIMITER], app[RATES], in_flight
    )
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    if metrics_route:
        app.router.add_get("/metrics", _metrics)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/v1/models/{model:.+}", _model)
    for suffix in OPENAI_PATHS:
        app.router.add_post("/v1" + suffix, handlers.openai)
    app.router.add_post("/v1/{path:.+}", handlers.relay)  # after the known paths: they match first
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    config = app[SETTINGS]
    connector = aiohttp.TCPConnector(
        limit=config.max_connections, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, connect=config.connect_timeout),
        skip_auto_headers=("User-Agent",),
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    client = upstream.Client(session, lean.Client(config.connect_timeout, config.max_connections))
    app[PROXY] = app[ROUTES].proxy = proxy.Proxy(config, app[BALANCER], app[METRICS], client, app[HOLDS])
    await app[DISCOVERY].start()
    pods = app.get(POD_LOAD)
    if pods is not None:
        await pods.start(app[DISCOVERY].table, app[BALANCER].in_flight)
    try:
        yield
    finally:
        if pods is not None:
            await pods.stop()
        await app[DISCOVERY].stop()
        await client.close()


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _readyz(request: web.Request) -> web.Response:
    """200 once discovery has synced. With no usable API key it stays 200 and says so: the pod
    can answer, and only it can tell clients why they are refused (an unready pod would hide
    that 401 behind connection errors, and a deleted Secret would take every replica away)."""
    source = request.app[DISCOVERY]
    if not source.synced:
        return web.Response(status=503, text="discovery has not synced yet")
    keys = source.keys()
    if request.app[SETTINGS].auth and not keys.keys:
        return web.Response(
            text=f"{guards.NO_KEY}: {keys.why_empty()}; every /v1 request is refused with 401"
        )
    return web.Response(text="ok")


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].exposition(), content_type="text/plain", charset="utf-8")


def _authenticate(request: web.Request) -> auth.ApiKey | web.Response | None:
    """The caller's key; None with ``--no-auth``; or the 401 response to send instead."""
    if not request.app[SETTINGS].auth:
        return None
    return guards.authenticate(request.headers.get("Authorization"), request.app[DISCOVERY].keys())


async def _models(request: web.Request) -> web.Response:
    key = _authenticate(request)
    if key is not None and not isinstance(key, auth.ApiKey):
        return key
    names = [n for n in request.app[DISCOVERY].table().ready_names() if key is None or key.allows(n)]
    listing = openai.ModelList(data=[openai.ModelCard(id=n) for n in names])
    return web.json_response(listing.model_dump())


async def _model(request: web.Request) -> web.Response:
    key = _authenticate(request)
    if key is not None and not isinstance(key, auth.ApiKey):
        return key
    name = request.match_info["model"]
    found = request.app[DISCOVERY].table().get(name)
    if found is None or not found.routable or (key is not None and not key.allows(name)):
        return guards.error(404, f"model '{name}' not found", param="model", code="model_not_found")
    return web.json_response(openai.ModelCard(id=name).model_dump())
