"""The handler of the OpenAI routes: a request's checks in order, then the proxy.

The order (key, rate, Content-Type, body, model, in-flight bounds) and each refusal are
described in :mod:`~.app` and :mod:`~.guards`. A :class:`OpenAIRoutes` holds what every request
reads (the settings, discovery, the metrics, the limiters, the proxy), gathered once when the
app is made: a dozen ``app[...]`` lookups per request were a measurable share of the hot path
(docs/benchmarks.md, "Issue #19, seventh pass"), as were the request metrics' label lookups,
now one dict lookup for both.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from modelyard.api import openai
from modelyard.gateway import (
    auth,
    body,
    discovery,
    exchange,
    guards,
    limits,
    metrics,
    proxy,
    ratelimit,
    resume,
    settings,
)


class OpenAIRoutes:
    """The ``/v1`` POST handlers; :attr:`proxy` is set when the app starts (its client needs
    the running loop)."""

    __slots__ = ("_outcomes", "config", "discovery", "in_flight", "limiter", "proxy", "rates", "stats")

    def __init__(
        self,
        config: settings.Settings,
        source: discovery.Discovery,
        stats: metrics.Metrics,
        limiter: auth.ConcurrencyLimiter,
        rates: ratelimit.RateLimiter,
        in_flight: limits.InFlight,
    ) -> None:
        self.config = config
        self.discovery = source
        self.stats = stats
        self.limiter = limiter
        self.rates = rates
        self.in_flight = in_flight
        self.proxy: proxy.Proxy | None = None

    def authenticate(self, request: web.Request) -> auth.ApiKey | web.Response | None:
        """The caller's key; None with ``--no-auth``; or the 401 response to send instead."""
        if not self.config.auth:
            return None
        return guards.authenticate(request.headers.get("Authorization"), self.discovery.keys())

    async def relay(self, request: web.Request) -> web.StreamResponse:
        """A POST to a /v1 path the gateway does not know: relayed when its body names a model."""
        if request.path == "/v1/models" or request.path.startswith("/v1/models/"):
            return guards.error(
                405, f"{request.method} {request.path}: Method Not Allowed (the gateway's own)"
            )
        return await self.openai(request, known=False)

    async def openai(self, request: web.Request, known: bool = True) -> web.StreamResponse:
        loop = request.task.get_loop()  # (asyncio.get_running_loop() makes a getpid() system call)
        started = loop.time()
        stats = self.stats
        label, endpoint, code = "unknown", "none", 0
        response: web.StreamResponse | None = None
        try:
            key = self.authenticate(request)
            # (isinstance of an aiohttp response is an ABC check, in Python: the plain classes are asked)
            if key is not None and not isinstance(key, auth.ApiKey):
                response = key
                return key
            if key is not None and (over := guards.over_rate(self.rates, stats, key)) is not None:
                response = over
                return over
            content_type = request.headers.get("Content-Type", "")
            path = request.path
            refused = openai.media_type_error(content_type, form=path.startswith("/v1/audio/"))
            if refused is not None:
                response = guards.error(415, refused, code="unsupported_media_type")
                return response
            raw = await guards.read_body(request, self.config, stats)
            if not isinstance(raw, bytes):
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
            table = self.discovery.table()
            stats.follow(table)
            if table.get(parsed.model) is None:
                response = guards.not_found(parsed.model, table.ready_names(), key)
                return response
            label = parsed.model
            if key is not None and not key.allows(parsed.model):
                message = f"this API key may not use model '{parsed.model}'"
                response = guards.error(403, message, code="model_not_allowed")
                return response
            in_flight = self.in_flight
            if not in_flight.acquire():
                message = (
                    f"the gateway is forwarding its limit of {in_flight.limit} requests (--max-in-flight);"
                    f" retry after {limits.RETRY_AFTER}s"
                )
                response = guards.limited(stats, "max_in_flight", 429, message, "gateway_busy")
                return response
            limiter = self.limiter
            if key is not None and not limiter.acquire(key):
                stats.child(stats.key_limited, key.name, "concurrency").inc()
                in_flight.release()
                message = "too many requests in flight for this API key"
                response = guards.error(429, message, code="concurrency_limit")
                return response
            suffix = path[3:]
            if request.query_string:
                suffix += f"?{request.query_string}"
            ex = exchange.Exchange(request, parsed, suffix, started, asyncio.current_task(loop))
            # a stream is counted against tpm by its usage chunk: ask for it (the client sees it
            # only when it asked too)
            ex.ask_usage = bool(key is not None and key.tpm and parsed.stream and path[3:] in resume.KINDS)
            assert self.proxy is not None
            try:
                response = await self.proxy.forward(ex, table, key)
            except exchange.ClientGone:
                ex.code = 499
                # (None: gone before the stream was committed; aiohttp finds the connection closed)
                response = ex.committed or web.Response(status=499)
            finally:
                in_flight.release()
                if key is not None:
                    limiter.release(key)
                    if key.tpm:  # (the tokens of a key without a tpm limit are not kept)
                        self.rates.count_tokens(key, ex.usage)
                endpoint, code = ex.endpoint, ex.code
            assert response is not None
            return response
        finally:
            status = str(code or (response.status if response is not None else 500))
            stats.child(stats.requests, label, endpoint, status).inc()  # (children memoised there)
            stats.child(stats.duration, label, endpoint, status).observe(loop.time() - started)
