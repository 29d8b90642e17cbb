"""``/v1/load_lora_adapter``, ``/v1/unload_lora_adapter`` (vLLM's runtime adapter API),
``/v1/adapters`` (modelyard's status of it) and the adapters file's loop: thin routes over
:mod:`modelyard.runtime.liveadapters`.

Loading reads weights and unloading waits for the adapter's requests, so both run off the event
loop, on threads of their own (never the request workers an unload may wait for).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from modelyard.api import lora
from modelyard.runtime import liveadapters
from modelyard.runtime.serving import http, keys

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass
class _State:
    threads: concurrent.futures.ThreadPoolExecutor
    follow: asyncio.Task[None] | None = None


_STATE = web.AppKey("adapters", _State)


async def _off_loop(app: web.Application, call: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(app[_STATE].threads, call)


async def load(request: web.Request) -> web.Response:
    req = http.parse(lora.LoadLoraAdapterRequest, await http.read_json(request))
    registry = request.app[keys.ADAPTERS]
    await _off_loop(request.app, lambda: registry.load(req.lora_name, req.lora_path))
    return http.json_response({"status": "loaded", "lora_name": req.lora_name})


async def unload(request: web.Request) -> web.Response:
    req = http.parse(lora.UnloadLoraAdapterRequest, await http.read_json(request))
    registry = request.app[keys.ADAPTERS]
    await _off_loop(request.app, lambda: registry.unload(req.lora_name))
    return http.json_response({"status": "unloaded", "lora_name": req.lora_name})


async def status(request: web.Request) -> web.Response:
    body = request.app[keys.ADAPTERS].status().model_dump(by_alias=True)
    return http.json_response(body)


async def load_file(app: web.Application) -> None:
    """The adapters file's first reading: every adapter in it, before the server turns ready."""
    path = app[keys.SETTINGS].adapters_file
    if path is None:
        return
    watched = liveadapters.AdaptersFile(path)
    await _off_loop(app, lambda: watched.apply(app[keys.ADAPTERS]))
    app[_STATE].follow = asyncio.get_running_loop().create_task(_follow(app, watched))


async def _follow(app: web.Application, watched: liveadapters.AdaptersFile) -> None:
    """Re-read the file every ``--adapters-sync-seconds`` (a mounted ConfigMap changes in place)."""
    interval = app[keys.SETTINGS].adapters_sync_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await _off_loop(app, lambda: watched.apply(app[keys.ADAPTERS]))
        except Exception:
            log.exception("adapters file %s", watched.path)


async def stop(app: web.Application) -> None:
    state = app[_STATE]
    if state.follow is not None and not state.follow.done():
        state.follow.cancel()
    state.threads.shutdown(wait=False, cancel_futures=True)


def add_routes(app: web.Application) -> None:
    # loads are one at a time (the registry's lock); unloads may wait for requests meanwhile
    app[_STATE] = _State(concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="modelyard-adapters"))
    app.router.add_post(lora.LOAD_PATH, load)
    app.router.add_post(lora.UNLOAD_PATH, unload)
    app.router.add_get(lora.STATUS_PATH, status)
    app.on_cleanup.append(stop)
