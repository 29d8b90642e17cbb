"""``/v1/models``, ``/health``, ``/ready``, ``/metrics`` and the warm-up that gates readiness.

``/health`` answers while the process lives; ``/ready`` only after the adapters file's adapters
were loaded (a failed one is recorded, not fatal) and one warm-up request per model succeeded
(so a pod joins its Service with its model loaded and exercised). A failed warm-up keeps
``/ready`` at 503 with the reason. ``/v1/models`` lists live adapters with their ``parent``, as
vLLM does.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import tempfile
import wave

from aiohttp import web

from modelyard.api import openai
from modelyard.runtime import invoke, sampling, served
from modelyard.runtime.serving import adapters, http, keys

log = logging.getLogger(__name__)


def _card(model: served.ServedModel) -> dict[str, object]:
    card = openai.ModelCard(id=model.name, created=model.created, owned_by=model.owned_by).model_dump()
    if model.parent is not None:
        card.update(parent=model.parent, root=model.root)
    return card


async def list_models(request: web.Request) -> web.Response:
    models = request.app[keys.MODELS]
    cards = [_card(m) for m in [*models, *models.adapters()]]
    return http.json_response({"object": "list", "data": cards})


async def get_model(request: web.Request) -> web.Response:
    return http.json_response(_card(request.app[keys.MODELS].get(request.match_info["model"])))


async def health(request: web.Request) -> web.Response:
    return http.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    state = request.app[keys.READINESS]
    if state.ready:
        return http.json_response({"status": "ready", "models": request.app[keys.MODELS].names()})
    return http.json_response({"status": "not ready", "reason": state.reason}, status=503)


async def metrics(request: web.Request) -> web.Response:
    m = request.app[keys.METRICS]
    for model in request.app[keys.MODELS]:
        pending = model.batcher.pending if model.batcher is not None else 0
        m.queue_depth.labels(model.name).set(model.limiter.depth + pending)
    return web.Response(body=m.render(), content_type="text/plain", charset="utf-8")


def _silence_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\x00\x00" * 16_000)
    return buffer.getvalue()


def warm_up_one(model: served.ServedModel) -> None:
    """One small request of the model's kind, on the calling (worker) thread."""
    h = model.handler
    if model.kind == "chat":
        one = sampling.SamplingParams(max_tokens=1)
        if callable(getattr(h, "generate", None)):
            hello = [{"role": "user", "content": "Hello"}]
            invoke.call(h.generate, hello, **sampling.handler_kwargs(h.generate, one))
        else:
            invoke.call(h.complete, "Hello", **sampling.handler_kwargs(h.complete, one))
    elif model.kind == "embedding":
        h.embed(["warm up"])
    elif model.kind == "rerank":
        h.rerank("warm up", ["warm up"])
    else:
        fd, path = tempfile.mkstemp(suffix=".wav")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_silence_wav())
            invoke.call(
                h.transcribe,
                path,
                language=None,
                prompt=None,
                temperature=None,
                task="transcribe",
                timestamp_granularity=None,
            )
        finally:
            os.unlink(path)


async def warm_up(app: web.Application, requests: bool = True) -> None:
    """The adapters file's adapters, then (``requests``) one request per model, then ready."""
    state = app[keys.READINESS]
    loop = asyncio.get_running_loop()
    state.reason = "loading the adapters file"
    await adapters.load_file(app)
    if not requests:
        state.ready, state.reason = True, "ready (no warm-up)"
        app[keys.METRICS].ready.set(1)
        return
    for model in app[keys.MODELS]:
        state.reason = f"warming up {model.name}"
        try:
            await loop.run_in_executor(app[keys.EXECUTOR], warm_up_one, model)
        except Exception as exc:
            state.reason = f"warm-up of {model.name!r} failed: {exc}"
            log.exception("warm-up of %s failed", model.name)
            return
    state.ready, state.reason = True, "ready"
    app[keys.METRICS].ready.set(1)
    log.info("ready: %s", ", ".join(app[keys.MODELS].names()))
