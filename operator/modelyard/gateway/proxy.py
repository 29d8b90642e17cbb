"""Forwarding one request: the model chain, retries, and relaying the answer.

For a request naming model ``m`` the gateway tries ``m``, then the fallbacks of ``m``'s
endpoints, then the gateway-wide ``FALLBACK_MODEL``, skipping names with no ready endpoint
(or not allowed for the caller's key). Within a model it makes up to ``1 + RETRY_ATTEMPTS``
attempts, each to a target not tried yet (immediately) or, when all were tried, to one again
after ``RETRY_DELAY``. Only failures before the client has seen a byte of the answer are
retried (see :mod:`modelyard.gateway.upstream`).

Streaming answers are relayed event by event (:mod:`modelyard.gateway.sse`); while waiting
for the first event the gateway commits a ``200 text/event-stream`` response and sends
comment keepalives, and retries continue behind them. A failure after that point ends the
stream with an OpenAI error event and ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from modelyard.api import openai
from modelyard.gateway import auth, balancer, body, metrics, routes, settings, sse, upstream

log = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client closed the connection; nothing more can be sent."""


class Exchange:
    """One client request on its way through the gateway."""

    __slots__ = ("body", "code", "committed", "endpoint", "failed_mid_stream", "request", "started", "suffix")

    def __init__(self, request: web.Request, parsed: body.RequestBody, suffix: str, started: float) -> None:
        self.request = request
        self.body = parsed
        self.suffix = suffix
        self.started = started
        self.committed: web.StreamResponse | None = None
        self.endpoint = "none"
        self.code = 0
        self.failed_mid_stream = False

    async def commit_sse(self) -> web.StreamResponse:
        if self.committed is None:
            response = web.StreamResponse(status=200, headers=sse.HEADERS)
            await response.prepare(self.request)
            self.committed = response
            self.code = 200
        return self.committed

    async def write(self, data: bytes) -> None:
        assert self.committed is not None
        try:
            await self.committed.write(data)
        except (ConnectionError, RuntimeError) as exc:
            raise ClientGone() from exc

    async def fail(self, status: int, message: str, code: str | None = None) -> web.StreamResponse:
        """An OpenAI error: a JSON response, or an error event when the stream is committed."""
        self.code = status
        if self.committed is not None:
            await self.write(sse.error_event(status, message, code))
            return self.committed
        return web.json_response(openai.error_body(status, message, code=code), status=status)


class Proxy:
    """Forwards requests to the targets a balancer picks."""

    def __init__(
        self,
        config: settings.Settings,
        chooser: balancer.Balancer,
        stats: metrics.Metrics,
        session: aiohttp.ClientSession,
    ) -> None:
        self.settings = config
        self.balancer = chooser
        self.metrics = stats
        self.session = session

    def chain(self, model: str, table: routes.RouteTable) -> list[routes.Model]:
        """The models to try, in order: the requested one, its fallbacks, the global one."""
        names = [model]
        first = table.get(model)
        if first is not None:
            names.extend(first.fallback)
        if self.settings.fallback_model:
            names.append(self.settings.fallback_model)
        seen: set[str] = set()
        found: list[routes.Model] = []
        for name in names:
            entry = table.get(name)
            if entry is not None and name not in seen:
                seen.add(name)
                found.append(entry)
        return found

    async def forward(
        self, exchange: Exchange, table: routes.RouteTable, key: auth.ApiKey | None
    ) -> web.StreamResponse:
        requested = exchange.body.model
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                return await self._route(exchange, table, key)
        except TimeoutError:
            return await exchange.fail(504, f"model '{requested}' did not answer within the request timeout")

    async def _route(
        self, exchange: Exchange, table: routes.RouteTable, key: auth.ApiKey | None
    ) -> web.StreamResponse:
        requested = exchange.body.model
        last: upstream.AttemptFailed | None = None
        for model in self.chain(requested, table):
            if not model.routable or (key is not None and not key.allows(model.name)):
                continue
            if model.name != requested:
                self.metrics.fallbacks.labels(requested, model.name).inc()
                log.info("model %r falls back to %r", requested, model.name)
            try:
                return await self._try_model(exchange, model)
            except upstream.AttemptFailed as exc:
                last = exc
        if last is None:
            return await exchange.fail(
                503, f"model '{requested}' has no ready endpoint; try again later", "model_not_ready"
            )
        if isinstance(last, upstream.ServerError) and exchange.committed is None:
            exchange.code = last.status
            return web.Response(
                status=last.status, body=last.body, headers=upstream.response_headers(last.headers)
            )
        return await exchange.fail(last.status, f"model '{requested}' could not answer: {last}")

    async def _try_model(self, exchange: Exchange, model: routes.Model) -> web.StreamResponse:
        tried: set[str] = set()
        last: upstream.AttemptFailed | None = None
        for attempt in range(1 + max(0, self.settings.retry_attempts)):
            choice = self.balancer.choose(model, tried)
            if choice is None:
                tried.clear()
                await asyncio.sleep(self.settings.retry_delay)
                choice = self.balancer.choose(model, tried)
                if choice is None:
                    break
            if attempt and last is not None:
                self.metrics.retries.labels(exchange.body.model, last.reason).inc()
            endpoint, target = choice
            tried.add(target.key)
            try:
                return await self._attempt(exchange, model, endpoint, target)
            except upstream.AttemptFailed as exc:
                log.warning("model %r: %s failed: %s", model.name, target.key, exc)
                last = exc
        assert last is not None
        raise last

    async def _attempt(
        self, exchange: Exchange, model: routes.Model, endpoint: routes.Endpoint, target: routes.Target
    ) -> web.StreamResponse:
        up = endpoint.upstream
        payload = exchange.body.with_model(up.model if up is not None and up.model else model.name)
        headers = upstream.request_headers(exchange.request.headers, up)
        gauge = self.metrics.child(self.metrics.in_flight, endpoint.name, target.key)
        loop = asyncio.get_running_loop()
        ok = False
        self.balancer.started(target)
        gauge.inc()
        sent = loop.time()
        if exchange.endpoint == "none":
            self.metrics.overhead.observe(sent - exchange.started)
        exchange.endpoint = endpoint.name
        try:
            if exchange.body.stream:
                try:
                    result = await self._stream(exchange, endpoint, target, payload, headers, sent)
                except ClientGone:
                    ok = True  # not the target's fault
                    raise
                ok = not exchange.failed_mid_stream
                return result
            response = await upstream.send(
                self.session, target, exchange.suffix, payload, headers, self.settings.first_byte_timeout
            )
            self.metrics.child(self.metrics.first_byte, exchange.body.model, endpoint.name).observe(
                loop.time() - sent
            )
            try:
                data = await response.read()
            except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
                raise upstream.AttemptFailed("read", f"the answer broke off ({type(exc).__name__})") from None
            finally:
                response.release()
            ok = True
            if response.status == 200 and b'"usage"' in data:
                self.metrics.count_usage(exchange.body.model, sse.find_json_usage(data))
            exchange.code = response.status
            return web.Response(
                status=response.status, body=data, headers=upstream.response_headers(response.headers)
            )
        finally:
            gauge.dec()
            if self.balancer.finished(target, ok):
                self.metrics.ejections.labels(endpoint.name).inc()
                log.warning("ejected %s after repeated failures", target.key)

    async def _open_stream(
        self, target: routes.Target, suffix: str, payload: bytes, headers: Mapping[str, str]
    ) -> tuple[aiohttp.ClientResponse, bytes, sse.EventSplitter | None]:
        """Send, then read up to the first complete event (or the whole answer if not SSE)."""
        timeout = self.settings.first_byte_timeout
        response = await upstream.send(self.session, target, suffix, payload, headers, timeout)
        if response.status != 200 or not response.content_type.startswith("text/event-stream"):
            return response, b"", None
        splitter = sse.EventSplitter()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    chunk = await response.content.readany()
                    if not chunk:
                        return response, b"", splitter
                    events = splitter.feed(chunk)
                    if events:
                        return response, events, splitter
        except TimeoutError:
            response.close()
            raise upstream.AttemptFailed("timeout", f"no first event within {timeout:g}s", 504) from None
        except aiohttp.ClientError as exc:
            response.close()
            raise upstream.AttemptFailed("read", f"the stream broke off ({type(exc).__name__})") from None

    async def _stream(
        self,
        exchange: Exchange,
        endpoint: routes.Endpoint,
        target: routes.Target,
        payload: bytes,
        headers: Mapping[str, str],
        sent: float,
    ) -> web.StreamResponse:
        opening = asyncio.ensure_future(self._open_stream(target, exchange.suffix, payload, headers))
        try:
            while True:
                done, _ = await asyncio.wait({opening}, timeout=self.settings.keepalive_interval)
                if done:
                    break
                await exchange.commit_sse()
                await exchange.write(sse.KEEPALIVE)
        except BaseException:  # the client left (or the request timed out) while waiting
            if not opening.done():
                opening.cancel()
            elif not opening.cancelled() and opening.exception() is None:
                opening.result()[0].close()
            raise
        response, first, splitter = opening.result()
        self.metrics.child(self.metrics.first_byte, exchange.body.model, endpoint.name).observe(
            asyncio.get_running_loop().time() - sent
        )
        if splitter is None:  # not an event stream: an error or a plain JSON answer
            try:
                data = await response.read()
            finally:
                response.release()
            if exchange.committed is None:
                exchange.code = response.status
                return web.Response(
                    status=response.status, body=data, headers=upstream.response_headers(response.headers)
                )
            return await exchange.fail(response.status, _error_message(data, response.status))
        await exchange.commit_sse()
        usage = sse.find_usage(first) if b'"usage"' in first else None
        try:
            await exchange.write(first)
            async for chunk in response.content.iter_any():
                events = splitter.feed(chunk)
                if events:
                    await exchange.write(events)
                    if b'"usage"' in events:
                        usage = sse.find_usage(events) or usage
        except ClientGone:
            response.close()
            raise
        except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
            response.close()
            exchange.failed_mid_stream = True
            log.warning("model %r: %s broke off mid-stream: %s", exchange.body.model, target.key, exc)
            return await exchange.fail(502, "the model server failed mid-stream", "upstream_interrupted")
        response.release()
        if usage is not None:
            self.metrics.count_usage(exchange.body.model, usage)
        assert exchange.committed is not None
        return exchange.committed


def _error_message(data: bytes, status: int) -> str:
    try:
        detail = openai.ErrorResponse.model_validate_json(data).error.message
    except ValueError:
        detail = data[:200].decode(errors="replace") or f"status {status}"
    return detail
