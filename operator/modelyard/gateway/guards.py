"""The checks a /v1 request passes before it is forwarded, and the answer each refusal gets.

:mod:`~.app` wires them in order (key, rate, Content-Type, body, model, in-flight bounds); here
each is a function of what it reads (a header, the key table, a limiter, the metrics), so the
refusals and their OpenAI error shapes are in one place and the request handler reads as the
order of checks.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from modelyard.api import openai
from modelyard.gateway import auth, limits, metrics, ratelimit, settings

NO_KEY = "no API key is configured on this gateway"


def error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> web.Response:
    return web.json_response(openai.error_body(status, message, param=param, code=code), status=status)


def limited(stats: metrics.Metrics, limit: str, status: int, message: str, code: str) -> web.Response:
    """The answer to a request cut short by a bound of :mod:`modelyard.gateway.limits`."""
    stats.child(stats.limited, limit).inc()
    response = error(status, message, code=code)
    if status == 429:
        response.headers["Retry-After"] = str(limits.RETRY_AFTER)
    elif status in (408, 413):
        response.force_close()  # the rest of the body is not wanted
    return response


async def read_body(
    request: web.Request, config: settings.Settings, stats: metrics.Metrics
) -> bytes | web.Response:
    """The whole body, or the answer when it is too large or too slow to arrive."""
    if request.content_length is not None and request.content_length > config.max_body_bytes:
        return _too_large(stats, config)
    try:
        if request.content.is_eof():  # the usual short body came with the headers: no timer,
            data = request.content.read_nowait()  # and taken as it lies (read() copies it twice)
            if len(data) > config.max_body_bytes:  # (a chunked body has no Content-Length)
                return _too_large(stats, config)
            return data
        async with asyncio.timeout(config.body_timeout):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _too_large(stats, config)
    except TimeoutError:
        message = f"the request body did not arrive within {config.body_timeout:g}s (--body-timeout)"
        return limited(stats, "body_timeout", 408, message, "body_timeout")


def _too_large(stats: metrics.Metrics, config: settings.Settings) -> web.Response:
    message = f"request body larger than {config.max_body_bytes} bytes (--max-body-bytes)"
    return limited(stats, "max_body_bytes", 413, message, "body_too_large")


def authenticate(authorization: str | None, keys: auth.KeyTable) -> auth.ApiKey | web.Response:
    """The caller's key from its ``Authorization`` header, or the 401 response to send instead."""
    if not keys.keys:
        message = f"{NO_KEY}, so every request is refused; the platform team must add one to its keys Secret"
        return error(401, message, code="no_api_key_configured")
    token = auth.bearer_token(authorization)
    if token is None:
        return error(401, "missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")
    key = keys.lookup(token)
    if key is None:
        return error(401, "invalid API key", code="invalid_api_key")
    return key


def over_rate(rates: ratelimit.RateLimiter, stats: metrics.Metrics, key: auth.ApiKey) -> web.Response | None:
    """A 429 with ``Retry-After`` when the key is over its rpm or tpm; else the request counts."""
    refused = rates.admit(key)
    if refused is None:
        return None
    stats.child(stats.key_limited, key.name, refused.limit).inc()
    response = error(429, refused.message, code="rate_limit_exceeded")
    response.headers["Retry-After"] = str(refused.retry_after)
    return response


def unknown_path(request: web.Request) -> web.Response:
    """A POST to a path the gateway does not know, whose body names no model to relay it to."""
    message = (
        f"{request.method} {request.path}: no such path on this gateway; a /v1 path it does not know"
        " is relayed to the model that a JSON body names in 'model'"
    )
    return error(404, message, code="unknown_path")


def not_found(name: str, table_names: list[str], key: auth.ApiKey | None) -> web.Response:
    visible = [n for n in table_names if key is None or key.allows(n)]
    shown = ", ".join(visible[:20]) + (", ..." if len(visible) > 20 else "")
    return error(
        404,
        f"model '{name}' not found; available: {shown or 'none'}",
        param="model",
        code="model_not_found",
    )
