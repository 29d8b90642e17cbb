"""From a request to its handler, and every /v1 error in the OpenAI shape.

aiohttp's ``Application._handle`` asks for the event loop (``asyncio.get_event_loop()``, a
``getpid()`` system call on CPython 3.11) and, for an application with a middleware, runs
two wrapping coroutines (its own ``_fix_request_current_app`` and ours) around every handler:
about 4% of the gateway's CPU per plain request (docs/benchmarks.md, "Issue #19, seventh
pass"). The gateway has one application and no sub-applications, so :func:`install` gives it
a handler that does what aiohttp's does for that case (resolve the route, freeze the match,
answer ``Expect``) and puts every error under /v1 in the OpenAI shape itself, as the
middleware did: the same answers, without the chain.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import hdrs, web

from modelyard.gateway import guards

log = logging.getLogger("modelyard.gateway.app")  # (where this error log has always come from)


def install(app: web.Application) -> None:
    """Serve ``app``'s requests without aiohttp's middleware chain; every error under /v1 in
    the OpenAI error shape: aiohttp's own (unknown path 404, wrong method 405) and anything
    unforeseen (500, logged with its traceback; the client gets no internals).

    aiohttp's server calls the application's ``_handle`` (looked up when the server is made,
    so an attribute of the instance is the one called). What aiohttp's does and this leaves
    out: the loop's debug check of the match, and the middlewares (``app`` has none; the
    assertion keeps it so), whose chain set ``match_info.current_app`` to ``app``, which
    :meth:`add_app` already did."""
    assert not app.middlewares, "dispatch.install replaces the middleware chain"
    router = app.router

    async def handle(request: web.Request) -> web.StreamResponse:
        match_info = await router.resolve(request)
        match_info.add_app(app)
        match_info.freeze()
        request._match_info = match_info  # (what aiohttp's _handle sets)
        if request.headers.get(hdrs.EXPECT):
            expected = await match_info.expect_handler(request)
            await request.writer.drain()
            if expected is not None:
                return expected
        try:  # every error under /v1 in the OpenAI error shape
            return await match_info.handler(request)
        except web.HTTPException as exc:  # aiohttp's own: unknown path 404, wrong method 405
            if exc.status < 400 or not request.path.startswith("/v1/"):
                raise
            return guards.error(exc.status, f"{request.method} {request.path}: {exc.reason}")
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:  # anything unforeseen: 500, logged with its traceback, no internals sent
            log.exception("unhandled error on %s %s", request.method, request.path)
            message = "internal error in the gateway (its log has the details)"
            return guards.error(500, message, code="internal_error")

    app._handle = handle  # type: ignore[method-assign]
