"""The typed aiohttp application keys of a runtime server, and its readiness state."""

from __future__ import annotations

import concurrent.futures
import dataclasses

from aiohttp import web

from modelyard.runtime import liveadapters, metrics, options, served
from modelyard.runtime.serving import tokenpipe


@dataclasses.dataclass
class Readiness:
    ready: bool = False
    reason: str = "warming up"


SETTINGS = web.AppKey("settings", options.ServerSettings)
MODELS = web.AppKey("models", served.ModelSet)
METRICS = web.AppKey("metrics", metrics.Metrics)
READINESS = web.AppKey("readiness", Readiness)
EXECUTOR = web.AppKey("executor", concurrent.futures.ThreadPoolExecutor)
TOKENS = web.AppKey("tokens", tokenpipe.TokenPipe)
ADAPTERS = web.AppKey("adapters", liveadapters.Registry)
