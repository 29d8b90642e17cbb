"""``create_app(settings, models)``: the runtime's aiohttp application.

Everything lives on the app under typed keys (:mod:`keys`): settings, the served models,
their live adapters, metrics with their own registry, the worker thread pool and readiness.
Startup creates the pool and the batchers and runs warm-up in the background; cleanup stops
them. Every error leaves as an OpenAI error object.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from modelyard.api import openai
from modelyard.runtime import batching, errors, liveadapters, metrics, options, served
from modelyard.runtime.serving import (
    adapters,
    audio,
    chat,
    embeddings,
    http,
    keys,
    responses,
    system,
    tokenpipe,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every API request by model, endpoint and status, and time it."""
    began = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        if request.path.startswith(("/v1/", "/rerank")):
            m = request.app[keys.METRICS]
            model = str(request.get(http.MODEL_NAME, ""))
            endpoint = (
                request.match_info.route.resource.canonical
                if request.match_info.route.resource
                else "unknown"
            )
            m.requests.labels(model, endpoint, str(status)).inc()
            m.latency.labels(model, endpoint).observe(time.monotonic() - began)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.RuntimeServingError as exc:
        if isinstance(exc, errors.OverloadedError):
            request.app[keys.METRICS].rejected.labels(exc.model).inc()
        return http.error_response(exc.status, exc.message, param=exc.param, code=exc.code)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 413:
            limit = request.app[keys.SETTINGS].max_request_bytes
            message = f"the request is larger than the limit of {limit} bytes"
        return http.json_response(openai.error_body(exc.status, message), status=exc.status)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return http.error_response(500, f"internal error: {type(exc).__name__}: {exc}")


async def _start(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    # a request holds a worker thread while it runs (a batched generation waits in it), so
    # every model's parallel slots get a thread on top of the shared ones
    slots = sum(model.limiter.max_parallelism for model in app[keys.MODELS])
    app[keys.EXECUTOR] = concurrent.futures.ThreadPoolExecutor(
        max_workers=settings.worker_threads + slots, thread_name_prefix="modelyard-worker"
    )
    app[keys.TOKENS] = tokenpipe.TokenPipe(asyncio.get_running_loop())
    m = app[keys.METRICS]
    for model in app[keys.MODELS]:
        fn = model.batch_function()
        if settings.batching and fn is not None:
            name = model.name
            model.batcher = batching.Batcher(
                name,
                fn,
                app[keys.EXECUTOR],
                max_size=settings.batch_max_size,
                window=settings.batch_window_ms / 1000.0,
                max_pending=max(settings.batch_max_size, 1) * max(settings.max_queue, 1),
                on_batch=lambda size, name=name: m.batch_size.labels(name).observe(size),  # type: ignore[misc]
            )
            model.batcher.start()
    if settings.warmup or settings.adapters_file is not None:
        app[_WARMUP] = asyncio.get_running_loop().create_task(system.warm_up(app, settings.warmup))
    else:
        app[keys.READINESS].ready, app[keys.READINESS].reason = True, "ready (no warm-up)"
        m.ready.set(1)


async def _shutting_down(app: web.Application) -> None:
    """Leave the Service first: /ready answers 503 while in-flight requests finish."""
    app[keys.READINESS].ready, app[keys.READINESS].reason = False, "shutting down"
    app[keys.METRICS].ready.set(0)


async def _stop(app: web.Application) -> None:
    task = app.get(_WARMUP)
    if task is not None and not task.done():
        task.cancel()
    for model in app[keys.MODELS]:
        if model.batcher is not None:
            await model.batcher.stop()
            model.batcher = None
    app[keys.EXECUTOR].shutdown(wait=False, cancel_futures=True)


_WARMUP = web.AppKey("warmup", asyncio.Task[None])


def create_app(
    settings: options.ServerSettings, models: served.ModelSet, metrics_: metrics.Metrics | None = None
) -> web.Application:
    app = web.Application(client_max_size=settings.max_request_bytes, middlewares=[_observe, _errors])
    app[keys.SETTINGS] = settings
    app[keys.MODELS] = models
    app[keys.METRICS] = metrics_ or metrics.Metrics()
    m = app[keys.METRICS]
    app[keys.ADAPTERS] = liveadapters.Registry(
        models,
        max_adapters=settings.max_adapters,
        max_rank=settings.max_lora_rank,
        observe=lambda outcome: m.adapter_loads.labels(outcome).inc(),
        cache_dir=settings.cache_dir,
    )
    app[keys.METRICS].watch_queues(lambda: [(model.name, model.queue_stats()) for model in models])
    app[keys.METRICS].watch_adapters(app[keys.ADAPTERS])
    app[keys.READINESS] = keys.Readiness()
    app.on_startup.append(_start)
    app.on_shutdown.append(_shutting_down)
    app.on_cleanup.append(_stop)
    r = app.router
    r.add_post("/v1/chat/completions", chat.chat_completions)
    r.add_post("/v1/completions", chat.completions)
    r.add_post("/v1/responses", responses.create)
    r.add_post("/v1/embeddings", embeddings.embeddings)
    r.add_post("/v1/rerank", embeddings.rerank)
    r.add_post("/rerank", embeddings.rerank)
    r.add_post("/v1/audio/transcriptions", audio.transcriptions)
    r.add_post("/v1/audio/translations", audio.translations)
    r.add_get("/v1/models", system.list_models)
    r.add_get("/v1/models/{model:.+}", system.get_model)
    r.add_get("/health", system.health)
    r.add_get("/ready", system.ready)
    r.add_get("/metrics", system.metrics)
    adapters.add_routes(app)
    return app
