"""Relaying a streamed answer: up to its first event, then event by event to the end.

:func:`open_stream` is one attempt's first half (connect, headers, the first complete event)
and may still fail retryably; :func:`relay` is the second half, after which a failure either
resumes the stream on another target (:mod:`modelyard.gateway.resume`) or ends it with an
error event (see :mod:`modelyard.gateway.sse`). An event larger than ``--max-event-bytes``
ends it so (retried when it is the first event).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from modelyard.api import openai
from modelyard.gateway import (
    deadlines,
    exchange,
    forwarded,
    lean,
    metrics,
    resume,
    routes,
    settings,
    sse,
    upstream,
)

log = logging.getLogger(__name__)


class Keepalive:
    """Comment keepalives to the client while an attempt waits for its first event.

    Its first one waits in ``clock`` (one timer for all streams, :class:`.deadlines.Timers`):
    a stream whose first event comes within the interval (the usual case) costs a dict insert
    and a pop, no timer, task or wait of its own. Once due, a task commits the ``200
    text/event-stream`` response and sends ``: keepalive`` every interval until :meth:`stop`;
    if the client is gone it cancels the waiting attempt, which then raises
    :class:`~modelyard.gateway.exchange.ClientGone` (:attr:`gone`). ``clock`` None: none.
    """

    __slots__ = ("_clock", "_ex", "_stopping", "_task", "_writing", "gone")

    def __init__(self, ex: exchange.Exchange, clock: deadlines.Timers[Keepalive] | None) -> None:
        self._ex = ex
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._writing = False
        self._stopping = False
        self.gone: exchange.ClientGone | None = None
        if clock is not None:
            clock.add(self, ex.loop)

    @staticmethod
    def due(keepalive: Keepalive) -> None:
        """The first keepalive is due (``clock``'s ``fire``)."""
        if not keepalive._stopping:
            keepalive._task = keepalive._ex.loop.create_task(keepalive._send())

    async def _send(self) -> None:
        assert self._clock is not None
        while not self._stopping:
            self._writing = True
            try:
                await self._ex.commit_sse()
                await self._ex.write(sse.KEEPALIVE)
            except exchange.ClientGone as exc:
                self.gone = exc
                if not self._stopping:
                    self._ex.task.cancel()
                return
            finally:
                self._writing = False
            if not self._stopping:
                await asyncio.sleep(self._clock.delay)

    def halt(self) -> asyncio.Task[None] | None:
        """No more keepalives; the task to wait for when a write is under way (a cancelled one
        could leave the response half-prepared), else None."""
        self._stopping = True
        if self._clock is not None:
            self._clock.discard(self)
        task, self._task = self._task, None
        if task is None or task.done():
            return None
        if not self._writing:
            task.cancel()
        return task

    async def stop(self) -> None:
        """:meth:`halt`, and wait for the write under way."""
        task = self.halt()
        if task is not None:
            await asyncio.wait({task})


async def open_stream(
    client: upstream.Client,
    target: routes.Target,
    suffix: str,
    payload: bytes,
    headers: forwarded.Forwarded | Mapping[str, str],
    config: settings.Settings,
) -> tuple[upstream.Answer, bytes, sse.EventSplitter | None]:
    """Send, then read up to the first complete event (or the whole answer if not SSE)."""
    timeout = config.attempt_timeout  # None: the request's own timeout bounds the attempt
    response = await upstream.send(
        client, target, suffix, payload, headers, timeout, config.max_response_bytes
    )
    if response.status != 200 or not response.content_type.startswith("text/event-stream"):
        return response, b"", None
    splitter = sse.EventSplitter(config.max_event_bytes)
    try:
        async with upstream.within(timeout):
            while True:
                chunk = await response.content.readany()
                if not chunk:
                    return response, b"", splitter
                events = splitter.feed(chunk)
                if events:
                    return response, events, splitter
    except TimeoutError:
        response.close()
        raise upstream.AttemptFailed("timeout", f"no first event{upstream.seconds(timeout)}", 504) from None
    except aiohttp.ClientError as exc:
        response.close()
        raise upstream.AttemptFailed("read", f"the stream broke off ({type(exc).__name__})") from None
    except sse.EventTooLarge as exc:
        response.close()
        raise upstream.TooLarge("max_event_bytes", str(exc)) from None
    except asyncio.CancelledError:  # the request timed out, or the client left
        response.close()
        raise


async def relay(
    ex: exchange.Exchange,
    response: upstream.Answer,
    first: bytes,
    splitter: sse.EventSplitter,
    stats: metrics.Metrics,
    target: routes.Target,
    stall: float = 0.0,
) -> web.StreamResponse:
    """Write the first events, then every complete event as it arrives; count the usage.

    A break (the connection fails, or no byte comes for ``stall`` seconds, 0 = never) raises
    :class:`~modelyard.gateway.resume.Interrupted` when the stream can be resumed elsewhere;
    otherwise the stream ends with an error event."""
    await ex.commit_sse()
    tracker = ex.resume
    try:
        if tracker is not None:
            first = tracker.take(first)
        usage = sse.find_usage(first) if b'"usage"' in first else None
        await ex.write(sse.for_client(first, ex.hide_usage), _ends(first))
        while chunk := await _read(response, stall):
            events = splitter.feed(chunk)
            if events:
                if tracker is not None:
                    events = tracker.take(events)
                await ex.write(sse.for_client(events, ex.hide_usage), _ends(events))
                if b'"usage"' in events:
                    usage = sse.find_usage(events) or usage
        if tracker is not None and not tracker.done:
            raise aiohttp.ClientPayloadError("the stream ended without data: [DONE]")
    except (exchange.ClientGone, asyncio.CancelledError):
        response.close()
        raise
    except (aiohttp.ClientError, asyncio.IncompleteReadError, TimeoutError) as exc:
        response.close()
        stalled = isinstance(exc, TimeoutError)
        why = f"sent nothing for {stall:g}s" if stalled else f"broke off mid-stream: {exc}"
        log.warning("model %r: %s %s", ex.body.model, target.key, why)
        return await _broken(ex, stats, "stalled" if stalled else "interrupted", why)
    except sse.EventTooLarge as exc:
        response.close()
        ex.failed_mid_stream = True
        stats.child(stats.limited, "max_event_bytes").inc()
        log.warning("model %r: %s: %s", ex.body.model, target.key, exc)
        return await ex.fail(502, str(exc), "upstream_event_too_large")
    response.release()
    if usage is not None:
        ex.usage = usage
        stats.count_usage(ex.body.model, usage)
    if tracker is not None and tracker.resumed:
        stats.resumptions.labels(ex.body.model, "resumed").inc()
    assert ex.committed is not None
    return ex.committed


def _ends(events: bytes) -> bool:
    """``events`` end with ``data: [DONE]``: the client's stream can be closed with them (the
    rest of the server's answer is still read, to keep its connection for the next request)."""
    return events.endswith(sse.DONE) and (len(events) == len(sse.DONE) or events.endswith(b"\n\n" + sse.DONE))


async def _read(response: upstream.Answer, stall: float) -> bytes:
    if not stall:
        return await response.content.readany()
    if isinstance(response, lean.Response):  # its own stall timer, armed only when it waits
        return await response.readany(stall)
    async with asyncio.timeout(stall):  # only the read: a slow client is not a stalled server
        return await response.content.readany()


async def _broken(ex: exchange.Exchange, stats: metrics.Metrics, reason: str, why: str) -> web.StreamResponse:
    """After a break: end the stream if nothing was missing, else resume it, else the error event."""
    tracker = ex.resume
    step = tracker.plan() if tracker is not None else "unsupported"
    ex.failed_mid_stream = True  # the target failed, whatever the client sees
    if tracker is not None and step == "done":
        if not tracker.done:
            await ex.write(sse.DONE)
        assert ex.committed is not None
        return ex.committed
    if tracker is not None and step == "length":
        await ex.write(tracker.closing())
        stats.resumptions.labels(ex.body.model, "resumed").inc()
        assert ex.committed is not None
        return ex.committed
    if step == "resume":
        raise resume.Interrupted(reason, f"the model server {why}")
    stats.resumptions.labels(ex.body.model, "unsupported").inc()
    if tracker is not None:
        log.info("model %r: the stream is not resumed: %s", ex.body.model, tracker.unsupported)
    return await ex.fail(502, "the model server failed mid-stream", "upstream_interrupted")


def error_message(data: bytes, status: int) -> str:
    try:
        detail = openai.ErrorResponse.model_validate_json(data).error.message
    except ValueError:
        detail = data[:200].decode(errors="replace") or f"status {status}"
    return detail
