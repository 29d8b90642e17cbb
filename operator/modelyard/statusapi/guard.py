"""The middleware in front of every ``/api`` route: the optional bearer token, the body-size
limit, and the promise that a client only ever sees the envelope's error shape (aiohttp's own
404/405/413 included), never a bare 500 page.

Paths outside ``/api`` (the dashboard's files, and whatever the host app adds, e.g. the
operator's ``/metrics``) pass through untouched: the dashboard holds no data, it asks the API.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from modelyard.statusapi import envelope, keys, routes

log = logging.getLogger(__name__)

PUBLIC = frozenset(r.path for r in routes.ROUTES if r.public)
_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authorized(request: web.Request, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time.

    A header that is not UTF-8 (aiohttp hands its bytes over as surrogate escapes) is compared
    as those bytes: it never matches, and never raises (which was a 500)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    offered = given.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(offered, token.encode())


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    config = request.app[keys.SETTINGS]
    try:
        if config.token and request.path not in PUBLIC and not authorized(request, config.token):
            response = envelope.error(
                401, "unauthorized", "a bearer token is required: Authorization: Bearer …"
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="modelyard"'
            return response
        length = request.content_length
        if length is not None and length > config.max_body_bytes:
            raise envelope.ApiError(
                413, "payload_too_large", f"the body has {length} bytes; the limit is {config.max_body_bytes}"
            )
        return await handler(request)
    except envelope.ApiError as exc:
        return envelope.from_api_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODES.get(exc.status, "http_error")
        if exc.status == 413:
            message = f"the body is larger than the limit of {config.max_body_bytes} bytes"
        elif exc.status == 404:
            message = f"no route {request.method} {request.path}"
        else:
            message = exc.reason
        response = envelope.error(exc.status, code, message)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("status API: %s %s failed", request.method, request.path)
        return envelope.error(500, "internal", "the status API failed on this request; see the operator log")
