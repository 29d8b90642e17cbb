"""One client request on its way through the gateway, and the one way it can end early.

An :class:`Exchange` remembers whether the answer is already committed (a ``200
text/event-stream`` response whose headers, and maybe keepalives, the client has seen), so
that a later failure is reported the only way still possible: as an OpenAI error event.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from modelyard.api import openai
from modelyard.gateway import body, resume, sse


class ClientGone(Exception):
    """The client closed the connection; nothing more can be sent."""


class _EventStream(web.StreamResponse):
    """A ``text/event-stream`` response whose headers go out with its first write (one send,
    not two): every commit is followed at once by a write (an event, a keepalive or the error
    event), so the client sees nothing later than before. (aiohttp's own ``Response`` does the
    same with its body.)"""

    _send_headers_immediately = False


class Exchange:
    """One client request on its way through the gateway."""

    __slots__ = (
        "ask_usage",
        "body",
        "code",
        "committed",
        "ended",
        "endpoint",
        "failed_mid_stream",
        "hide_usage",
        "loop",
        "request",
        "resume",
        "started",
        "suffix",
        "task",
        "usage",
    )

    def __init__(
        self,
        request: web.Request,
        parsed: body.RequestBody,
        suffix: str,
        started: float,
        task: asyncio.Task[Any] | None,
    ) -> None:
        assert task is not None
        self.task = task
        """The task handling the request (its timeout cancels it)."""
        self.loop = task.get_loop()
        """Its loop, kept: ``asyncio.get_running_loop()`` costs a ``getpid()`` system call."""
        self.request = request
        self.body = parsed
        self.suffix = suffix
        self.started = started
        self.committed: web.StreamResponse | None = None
        self.endpoint = "none"
        self.code = 0
        self.failed_mid_stream = False
        self.ended = False
        """The committed stream's last bytes are sent (:meth:`write` with ``last``)."""
        self.usage: object = None
        """The ``usage`` of the answer relayed, when it reported one."""
        self.ask_usage = False
        """Ask a stream for its usage chunk (the key has a tpm limit)."""
        self.hide_usage = False
        """Drop that chunk on the way to the client (it was asked for by the gateway only)."""
        self.resume = resume.Tracker.start(suffix, parsed.raw) if parsed.stream else None
        """Follows a chat or completion stream, to continue it elsewhere if it breaks."""

    async def commit_sse(self) -> web.StreamResponse:
        if self.committed is None:
            response = _EventStream(status=200, headers=sse.HEADERS)
            try:
                await response.prepare(self.request)
            except (ConnectionError, RuntimeError) as exc:  # the client left before the first event
                raise ClientGone() from exc
            self.committed = response
            self.code = 200
        return self.committed

    async def write(self, data: bytes, last: bool = False) -> None:
        """Send ``data`` on the committed stream; ``last``: it ends the stream (``data: [DONE]``),
        so the end of the chunked body goes in the same send, and anything written after it is
        dropped (a server's bytes after ``[DONE]`` never reached a client that had stopped)."""
        assert self.committed is not None
        if self.ended:
            return
        try:
            if last:
                self.ended = True
                await self.committed.write_eof(data)
            else:
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
