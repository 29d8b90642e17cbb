"""Forwarding one request: the model chain, retries, and relaying the answer.

For a request naming model ``m`` the gateway tries ``m``, then the fallbacks of ``m``'s
endpoints, then the gateway-wide ``FALLBACK_MODEL``, skipping names with no ready endpoint
(or not allowed for the caller's key). Within a model it makes up to ``1 + RETRY_ATTEMPTS``
attempts, each to a target not tried yet (immediately) or, when all were tried, to one again
after ``RETRY_DELAY``. Only failures before the client has seen a byte of the answer are
retried (see :mod:`modelyard.gateway.upstream`).

Streaming answers are relayed event by event (:mod:`modelyard.gateway.relay`); while waiting
for the first event the gateway commits a ``200 text/event-stream`` response and sends
comment keepalives, and retries continue behind them. A chat or completion stream that breaks
after that point (or stalls for ``--stream-stall-timeout``) is continued by the next attempt
of the same chain (:mod:`modelyard.gateway.resume`); any other failure, or one that cannot
be resumed, ends the stream with an OpenAI error event and ``data: [DONE]``.

What a model server sends is bounded too: a non-streamed answer by ``--max-response-bytes``,
one event by ``--max-event-bytes``; going over fails the attempt (and is retried like any
failure before the first byte).

A model with a PrefixHash endpoint gets the request's affinity key (:func:`affinity_key`),
which the balancer hashes to pick that endpoint's pod (:mod:`modelyard.gateway.prefixhash`).

A pick that lands on an endpoint with no ready pod that holds requests waits in
:mod:`modelyard.gateway.hold` (before anything is committed, so a failure is still a plain
503 with ``Retry-After``), then goes to the endpoint's first ready pod.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from aiohttp import web

from modelyard.gateway import (
    auth,
    balancer,
    body,
    deadlines,
    exchange,
    forwarded,
    hold,
    metrics,
    relay,
    resume,
    routes,
    settings,
    sse,
    upstream,
)

log = logging.getLogger(__name__)


def affinity_key(ex: exchange.Exchange, routing: routes.Routing) -> str:
    """What a request is hashed by: the session header's value, else the ``user`` field (when
    ``routing`` opts in to them and the request has them), else its prompt prefix. A tag in
    front keeps a session id from landing where a prompt of the same text does. A live
    adapter's routing has one key for all its requests: its name."""
    if routing.key is not None:
        return "a:" + routing.key
    if routing.session_header:
        session = ex.request.headers.get(routing.session_header)
        if session:
            return "s:" + session
    prompt, user = ex.body.prompt_and_user(routing.prefix_chars)
    if routing.session_user and user:
        return "u:" + user
    return "p:" + prompt


class Proxy:
    """Forwards requests to the targets a balancer picks."""

    def __init__(
        self,
        config: settings.Settings,
        chooser: balancer.Balancer,
        stats: metrics.Metrics,
        client: upstream.Client,
        holds: hold.Holds,
    ) -> None:
        self.settings = config
        self.balancer = chooser
        self.metrics = stats
        self.client = client
        self.holds = holds
        self.deadlines = deadlines.Deadlines(config.request_timeout)
        interval = config.keepalive_interval
        self.keepalives = deadlines.Timers(interval, relay.Keepalive.due) if interval > 0 else None
        """Every stream's first keepalive, on one timer (:class:`.relay.Keepalive`)."""

    def chain(self, model: str, table: routes.RouteTable) -> list[routes.Model]:
        """The models to try, in order: the requested one, its fallbacks, the global one."""
        first = table.get(model)
        if first is not None and not first.fallback and not self.settings.fallback_model:
            return [first]  # the usual case
        names = [model]
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
        self, ex: exchange.Exchange, table: routes.RouteTable, key: auth.ApiKey | None
    ) -> web.StreamResponse:
        requested = ex.body.model
        task = ex.task
        cancelling = task.cancelling()
        self.deadlines.add(task)  # the request timeout (what asyncio.timeout did, for less)
        invalid: str | None = None
        try:
            return await self._route(ex, table, key)
        except body.BodyError as exc:  # its model could not be rewritten for a fallback or upstream
            invalid = str(exc)
        except asyncio.CancelledError:
            if not self.deadlines.done(task) or task.uncancel() > cancelling:
                raise  # not (only) the request timeout: the client left, or the gateway stops
        finally:
            if self.deadlines.done(task):  # timed out, but the cancellation was absorbed
                task.uncancel()
        if invalid is not None:
            return await ex.fail(400, invalid)
        return await ex.fail(504, f"model '{requested}' did not answer within the request timeout")

    async def _route(
        self, ex: exchange.Exchange, table: routes.RouteTable, key: auth.ApiKey | None
    ) -> web.StreamResponse:
        requested = ex.body.model
        last: upstream.AttemptFailed | None = None
        for model in self.chain(requested, table):
            if not model.routable or (key is not None and not key.allows(model.name)):
                continue
            if model.name != requested:
                self.metrics.fallbacks.labels(requested, model.name).inc()
                log.info("model %r falls back to %r", requested, model.name)
            try:
                return await self._try_model(ex, model)
            except upstream.AttemptFailed as exc:
                last = exc
        if last is None:
            first = table.get(requested)
            down = first.why_down() if first is not None else ""
            if down:
                return await self._unavailable(ex, f"model '{requested}' cannot come up: {down}")
            return await ex.fail(
                503, f"model '{requested}' has no ready endpoint; try again later", "model_not_ready"
            )
        if isinstance(last, hold.HoldFailed):
            return await self._unavailable(ex, str(last))
        if isinstance(last, resume.Interrupted) or (ex.resume is not None and ex.resume.resumed):
            self.metrics.resumptions.labels(requested, "failed").inc()
            return await ex.fail(502, f"the model server failed mid-stream: {last}", "upstream_interrupted")
        if isinstance(last, upstream.ServerError) and ex.committed is None:
            ex.code = last.status
            return web.Response(
                status=last.status, body=last.body, headers=upstream.response_headers(last.headers)
            )
        return await ex.fail(last.status, f"model '{requested}' could not answer: {last}")

    async def _unavailable(self, ex: exchange.Exchange, message: str) -> web.StreamResponse:
        response = await ex.fail(503, message, "model_unavailable")
        if ex.committed is None:
            response.headers["Retry-After"] = str(hold.RETRY_AFTER)
        return response

    async def _try_model(self, ex: exchange.Exchange, model: routes.Model) -> web.StreamResponse:
        tried: set[str] = set()
        last: upstream.AttemptFailed | None = None
        routing = model.affinity
        key = affinity_key(ex, routing) if routing is not None else None
        for attempt in range(1 + max(0, self.settings.retry_attempts)):
            choice = self.balancer.choose(model, tried, key)
            if choice is None:
                tried.clear()
                await asyncio.sleep(self.settings.retry_delay)
                choice = self.balancer.choose(model, tried, key)
                if choice is None:
                    break
            if attempt and last is not None:
                self.metrics.retries.labels(ex.body.model, last.reason).inc()
            endpoint, target = choice
            if target is None:  # at zero or coming up: wait for a ready pod (or a 503)
                model = await self.holds.wait(model, endpoint)
                woken = model.endpoint(endpoint.name)
                assert woken is not None
                choice = self.balancer.choose(dataclasses.replace(model, endpoints=(woken,)), tried, key)
                assert choice is not None
                endpoint, target = choice
            assert target is not None
            tried.add(target.key)
            try:
                return await self._attempt(ex, model, endpoint, target)
            except upstream.AttemptFailed as exc:
                log.warning("model %r: %s failed: %s", model.name, target.key, exc)
                if isinstance(exc, upstream.TooLarge):
                    self.metrics.child(self.metrics.limited, exc.limit).inc()
                last = exc
        assert last is not None
        raise last

    async def _attempt(
        self, ex: exchange.Exchange, model: routes.Model, endpoint: routes.Endpoint, target: routes.Target
    ) -> web.StreamResponse:
        up = endpoint.upstream
        name = up.model if up is not None and up.model else model.name
        tracker = ex.resume
        payload = tracker.body_for(name) if tracker and tracker.resumed else ex.body.with_model(name)
        if ex.ask_usage:
            payload, asked = body.ask_stream_usage(payload)
            ex.hide_usage = not asked
        request = ex.request
        headers = forwarded.Forwarded(request.headers, request.raw_headers, up)
        gauge = self.metrics.child(self.metrics.in_flight, endpoint.name, target.key)
        demand, sent_to = self.metrics.endpoint(endpoint.name)
        loop = ex.loop
        ok = False
        self.balancer.started(target)
        gauge.inc()
        demand.inc()
        sent_to.inc()
        sent = loop.time()
        if ex.endpoint == "none":
            self.metrics.overhead.observe(sent - ex.started)
        ex.endpoint = endpoint.name
        try:
            if ex.body.stream:
                try:
                    result = await self._stream(ex, endpoint, target, payload, headers, sent)
                except exchange.ClientGone:
                    ok = True  # not the target's fault
                    raise
                ok = not ex.failed_mid_stream
                return result
            limit = self.settings.max_response_bytes
            response = await upstream.send(
                self.client, target, ex.suffix, payload, headers, self.settings.attempt_timeout, limit
            )
            self.metrics.child(self.metrics.first_byte, ex.body.model, endpoint.name).observe(
                loop.time() - sent
            )
            data = await upstream.read_body(response, limit)
            ok = True
            if response.status == 200 and b'"usage"' in data:
                ex.usage = sse.find_json_usage(data)
                self.metrics.count_usage(ex.body.model, ex.usage)
            ex.code = response.status
            return web.Response(
                status=response.status, body=data, headers=upstream.response_headers(response.headers)
            )
        finally:
            gauge.dec()
            demand.dec()
            if self.balancer.finished(target, ok):
                self.metrics.ejections.labels(endpoint.name).inc()
                log.warning("ejected %s after repeated failures", target.key)

    async def _stream(
        self,
        ex: exchange.Exchange,
        endpoint: routes.Endpoint,
        target: routes.Target,
        payload: bytes,
        headers: forwarded.Forwarded,
        sent: float,
    ) -> web.StreamResponse:
        keepalive = relay.Keepalive(ex, self.keepalives)
        try:
            opened = await relay.open_stream(self.client, target, ex.suffix, payload, headers, self.settings)
        except asyncio.CancelledError:
            await keepalive.stop()
            if keepalive.gone is None:
                raise
            ex.task.uncancel()  # the keepalive found the client gone and stopped the wait
            raise keepalive.gone from None
        finally:
            if (writing := keepalive.halt()) is not None:
                await asyncio.wait({writing})
        response, first, splitter = opened
        self.metrics.child(self.metrics.first_byte, ex.body.model, endpoint.name).observe(
            ex.loop.time() - sent
        )
        if splitter is None:  # not an event stream: an error or a plain JSON answer
            data = await upstream.read_body(response, self.settings.max_response_bytes)
            if ex.committed is None:
                ex.code = response.status
                return web.Response(
                    status=response.status, body=data, headers=upstream.response_headers(response.headers)
                )
            return await ex.fail(response.status, relay.error_message(data, response.status))
        stall = self.settings.stream_stall_timeout
        return await relay.relay(ex, response, first, splitter, self.metrics, target, stall)
