"""The typed application keys of the status API (one place, so handlers and the factory agree)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from modelyard.statusapi import cache, settings, traffic

SETTINGS = web.AppKey("statusapi_settings", settings.StatusApiSettings)
CACHE = web.AppKey("statusapi_cache", cache.Cache)
OPENAPI = web.AppKey("statusapi_openapi", dict[str, Any])
STOPPING = web.AppKey("statusapi_stopping", asyncio.Event)
TRAFFIC = web.AppKey("statusapi_traffic", traffic.Traffic)
