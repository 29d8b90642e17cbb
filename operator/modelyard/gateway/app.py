"""The gateway's aiohttp application: the OpenAI routes, health, metrics, and the guards.

``create_app(settings, discovery, balancer)`` wires everything by typed app keys; nothing
lives at module level. Before a request is forwarded it is authenticated (a bearer key; with
no usable key configured every request is a 401 saying so, unless ``--no-auth``), held to its
key's requests and tokens per minute (429 with ``Retry-After``, :mod:`~.ratelimit`), bounded
(body size → 413, a body not sent within ``--body-timeout`` → 408, requests in flight over
``--max-in-flight`` → 429, per-key concurrency → 429; all bounds are listed in
:mod:`modelyard.gateway.limits`), its Content-Type checked (415, the runtime's rule:
:func:`modelyard.api.openai.media_type_error`), and its model checked (unknown → 404, not
allowed for the key → 403). Each check and its refusal is in :mod:`~.guards`; everything else
is :mod:`modelyard.gateway.proxy`.

Besides the OpenAI paths it knows (:data:`OPENAI_PATHS`), the gateway relays any other POST
under ``/v1/`` whose JSON body names a ``model``, to that model's endpoints by the same path
(auth, bounds, retries, weighted split, metrics and streaming as for chat), so a new OpenAI
path works without a gateway release; such a path without a ``model`` is a 404 naming it.
``/v1/models`` stays the gateway's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from modelyard.api import openai
from modelyard.gateway import (
    auth,
    balancer,
    body,
    discovery,
    exchange,
    guards,
    hold,
    lean,
    limits,
    metrics,
    podload,
    proxy,
    ratelimit,
    resume,
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
    app = web.Application(client_max_size=config.max_body_bytes + 1, middlewares=[_errors])
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
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    if metrics_route:
        app.router.add_get("/metrics", _metrics)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/v1/models/{model:.+}", _model)
    for suffix in OPENAI_PATHS:
        app.router.add_post("/v1" + suffix, _openai)
    app.router.add_post("/v1/{path:.+}", _relay)  # after the known paths: they match first
    return app


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error under /v1 in the OpenAI error shape: aiohttp's own (unknown path 404, wrong
    method 405) and anything unforeseen (500, logged with its traceback; the client gets no
    internals)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/v1/"):
            raise
        return guards.error(exc.status, f"{request.method} {request.path}: {exc.reason}")
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return guards.error(
            500, "internal error in the gateway (its log has the details)", code="internal_error"
        )


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
    app[PROXY] = proxy.Proxy(config, app[BALANCER], app[METRICS], client, app[HOLDS])
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
    if isinstance(key, web.Response):
        return key
    names = [n for n in request.app[DISCOVERY].table().ready_names() if key is None or key.allows(n)]
    listing = openai.ModelList(data=[openai.ModelCard(id=n) for n in names])
    return web.json_response(listing.model_dump())


async def _model(request: web.Request) -> web.Response:
    key = _authenticate(request)
    if isinstance(key, web.Response):
        return key
    name = request.match_info["model"]
    found = request.app[DISCOVERY].table().get(name)
    if found is None or not found.routable or (key is not None and not key.allows(name)):
        return guards.error(404, f"model '{name}' not found", param="model", code="model_not_found")
    return web.json_response(openai.ModelCard(id=name).model_dump())


async def _relay(request: web.Request) -> web.StreamResponse:
    """A POST to a /v1 path the gateway does not know: relayed when its body names a model."""
    if request.path == "/v1/models" or request.path.startswith("/v1/models/"):
        return guards.error(405, f"{request.method} {request.path}: Method Not Allowed (the gateway's own)")
    return await _openai(request, known=False)


async def _openai(request: web.Request, known: bool = True) -> web.StreamResponse:
    loop = request.task.get_loop()  # (asyncio.get_running_loop() makes a getpid() system call)
    started = loop.time()
    app = request.app
    stats = app[METRICS]
    label, endpoint, code = "unknown", "none", 0
    response: web.StreamResponse | None = None
    try:
        key = _authenticate(request)
        if isinstance(key, web.Response):
            response = key
            return key
        if key is not None and (over := guards.over_rate(app[RATES], stats, key)) is not None:
            response = over
            return over
        content_type = request.headers.get("Content-Type", "")
        refused = openai.media_type_error(content_type, form=request.path.startswith("/v1/audio/"))
        if refused is not None:
            response = guards.error(415, refused, code="unsupported_media_type")
            return response
        raw = await guards.read_body(request, app[SETTINGS], stats)
        if isinstance(raw, web.Response):
            response = raw
            return response
        try:
            parsed = body.parse(raw, content_type)
        except body.BodyError as exc:
            if exc.limit is not None:
                stats.child(stats.limited, exc.limit).inc()
            if known or exc.limit is not None:
                response = guards.error(400, str(exc), param=exc.param)
            else:  # no model to relay an unknown path to
                response = guards.unknown_path(request)
            return response
        table = app[DISCOVERY].table()
        stats.follow(table)
        if table.get(parsed.model) is None:
            response = guards.not_found(parsed.model, table.ready_names(), key)
            return response
        label = parsed.model
        if key is not None and not key.allows(parsed.model):
            response = guards.error(
                403, f"this API key may not use model '{parsed.model}'", code="model_not_allowed"
            )
            return response
        in_flight = app[IN_FLIGHT]
        if not in_flight.acquire():
            message = (
                f"the gateway is forwarding its limit of {in_flight.limit} requests (--max-in-flight);"
                f" retry after {limits.RETRY_AFTER}s"
            )
            response = guards.limited(stats, "max_in_flight", 429, message, "gateway_busy")
            return response
        limiter = app[LIMITER]
        if key is not None and not limiter.acquire(key):
            stats.child(stats.key_limited, key.name, "concurrency").inc()
            in_flight.release()
            response = guards.error(
                429, "too many requests in flight for this API key", code="concurrency_limit"
            )
            return response
        suffix = request.path[3:] + (f"?{request.query_string}" if request.query_string else "")
        ex = exchange.Exchange(request, parsed, suffix, started, asyncio.current_task(loop))
        # a stream is counted against tpm by its usage chunk: ask for it (the client sees it
        # only when it asked too)
        ex.ask_usage = bool(
            key is not None and key.tpm and parsed.stream and request.path[3:] in resume.KINDS
        )
        try:
            response = await app[PROXY].forward(ex, table, key)
        except exchange.ClientGone:
            ex.code = 499
            # (None: gone before the stream was committed; aiohttp finds the connection closed)
            response = ex.committed or web.Response(status=499)
        finally:
            in_flight.release()
            if key is not None:
                limiter.release(key)
                if key.tpm:  # (the tokens of a key without a tpm limit are not kept)
                    app[RATES].count_tokens(key, ex.usage)
            endpoint, code = ex.endpoint, ex.code
        assert response is not None
        return response
    finally:
        status = code or (response.status if response is not None else 500)
        elapsed = loop.time() - started
        stats.child(stats.requests, label, endpoint, str(status)).inc()
        stats.child(stats.duration, label, endpoint, str(status)).observe(elapsed)
