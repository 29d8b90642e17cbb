"""The typed application keys of the status API (one place, so handlers and the factory agree)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from modelyard.statusapi import settings, view

SETTINGS = web.AppKey("statusapi_settings", settings.StatusApiSettings)
VIEW = web.AppKey("statusapi_view", view.View)
OPENAPI = web.AppKey("statusapi_openapi", dict[str, Any])
STOPPING = web.AppKey("statusapi_stopping", asyncio.Event)
