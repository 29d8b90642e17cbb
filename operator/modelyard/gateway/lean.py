"""A lean HTTP/1.1 client for the hot path: pooled keep-alive connections to plain-HTTP targets.

Profiled under load, aiohttp's client took about a third of the gateway's CPU per request
(docs/benchmarks.md, "Gateway hot path"): a request object, a connector, a response object
with its stream reader, timers and headers parsed twice over. The proxy needs much less: one
POST whose body is already bytes, the answer's status and headers, then its body as the bytes
arrive. This client does only that, on an :class:`asyncio.Protocol` per connection (uvloop's
transports when the gateway runs on uvloop) with httptools (llhttp, in C) parsing the answer:
``Content-Length``, chunked, or read until the connection closes.

A :class:`Response` has the part of ``aiohttp.ClientResponse`` the gateway uses (``status``,
``headers``, ``content_type``, ``content_length``, ``content.readany()``, ``close()``,
``release()``), and a failure raises aiohttp's own exception classes, so the retry, ejection
and resume paths see the same thing whichever client sent the request::

    TimeoutError                       the connection was not made within the connect timeout
    aiohttp.ClientConnectionError      it could not be made, or the answer's head was not HTTP
      aiohttp.ServerDisconnectedError  it closed before the answer's head was complete
    aiohttp.ClientPayloadError         it closed, or the body was malformed, before the body's end

A connection from the pool that the server closed while it sat idle (the answer's first byte
never came) is not a failure of the request: it is sent once more on a new connection.
Connections idle for :data:`KEEPALIVE` seconds are closed when next looked at. The body is
read as the reader asks for it: past :data:`HIGH_WATER` bytes unread the socket stops being
read, so a slow client slows the model server instead of filling the gateway's memory.

Only ``http://`` targets; an upstream API on ``https://`` goes through aiohttp's
``ClientSession`` (:class:`modelyard.gateway.upstream.Client` chooses).

(Near 400 lines: the connection, the answer it reads and the pool share one state.)
"""

from __future__ import annotations

import asyncio
import collections
import functools
import typing
import urllib.parse
from collections.abc import Mapping

import aiohttp
import httptools
import multidict

from modelyard.gateway import forwarded

KEEPALIVE = 60.0
"""Seconds an idle pooled connection is kept (aiohttp's ``keepalive_timeout`` before)."""
HIGH_WATER = 256 * 1024
"""Bytes of an answer read and not yet taken, past which the socket is no longer read."""


@functools.lru_cache(maxsize=4096)
def address(url: str) -> tuple[str, int, str, str] | None:
    """``(host, port, path, Host header)`` of a plain-HTTP URL, None for anything else."""
    if not url.startswith("http://"):
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or parts.username is not None or parts.password is not None:
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, parts.port or 80, path, parts.netloc


class Response:
    """One answer, read from its connection as the bytes arrive."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_done",
        "_error",
        "_head",
        "_keep",
        "_raw",
        "_settled",
        "_waiter",
        "content_length",
        "content_type",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self._head: asyncio.Future[None] = conn.loop.create_future()
        self._raw: list[tuple[bytes, bytes]] = []
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._keep = False
        self._settled = False
        self._error: Exception | None = None
        self.status = 0
        self.headers: multidict.CIMultiDict[str] = multidict.CIMultiDict()
        self.content_type = "application/octet-stream"
        self.content_length: int | None = None

    @property
    def content(self) -> Response:
        """aiohttp's spelling: ``response.content.readany()``. (A property, not an attribute
        holding ``self``: that cycle left every answer to the garbage collector.)"""
        return self

    async def readany(self, within: float = 0.0) -> bytes:
        """The bytes that came since the last call (waiting for some), b"" at the end.
        ``within`` > 0: TimeoutError when none came for so many seconds (a timer is armed only
        when the call has to wait, unlike ``asyncio.timeout`` around every read)."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                return b""
            loop = self._conn.loop
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(within, _expire, waiter) if within > 0 else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if self._buffered > HIGH_WATER:
            self._conn.resume()
        self._buffered = 0
        return data

    def release(self) -> None:
        """Done with the answer: its connection goes back to the pool when the answer was read
        to its end and may be kept, else it is closed."""
        if self._settled:
            return
        if self._done and self._keep and self._error is None and not self._conn.closed:
            self._settled = True
            self._conn.resume()  # paused for an answer left unread: the next one must be read
            self._conn.pool.put(self._conn)
        else:
            self.close()

    def close(self) -> None:
        """Drop the connection, whatever is left of the answer."""
        if not self._settled:
            self._settled = True
            self._conn.close()

    # Called by the connection's parser.
    def _headers_done(self, status: int) -> None:
        self.status = status
        headers = self.headers = multidict.CIMultiDict(
            [(name.decode("latin-1"), value.decode("utf-8", "surrogateescape")) for name, value in self._raw]
        )
        self._raw.clear()
        kind = headers.get("Content-Type")
        if kind:
            self.content_type = kind.partition(";")[0].strip().lower()
        length = headers.get("Content-Length")
        if length is not None and length.isdigit():
            self.content_length = int(length)
        if not self._head.done():
            self._head.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._conn.pause()
        self._wake()

    def _finish(self, keep: bool) -> None:
        self._done = True
        self._keep = keep
        self._wake()

    def _fail(self, error: Exception) -> None:
        if not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # retrieved: a send that was cancelled never awaits it
        elif not self._done:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Connection(asyncio.Protocol):
    """One keep-alive connection, with the answer it is reading (at most one at a time)."""

    def __init__(self, pool: Pool, loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore | None) -> None:
        self.pool = pool
        self.loop = loop
        self.slots = slots
        """Released when the connection closes (``Client(limit=...)``)."""
        self.transport: asyncio.Transport | None = None
        self.pending = b""
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.received = False
        """A byte of the current answer came."""
        self.paused = False
        self.idle_since = 0.0

    def send(self, data: bytes, response: Response) -> None:
        self.response = response
        self.received = False
        if self.transport is None:  # uvloop may return the connection before connection_made
            self.pending = data
        else:
            self.transport.write(data)

    def pause(self) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if self.pending:
            self.transport.write(self.pending)
            self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.response is not None:
                self.response._fail(_broken(self.response, f"not a valid HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.slots is not None:
            self.slots.release()
            self.slots = None
        response = self.response
        if response is None or response._done:
            return
        if exc is None and response._head.done() and _until_close(response):
            response._finish(False)  # a body that ends with the connection: this is its end
        else:
            response._fail(_broken(response, "the model server closed the connection"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response._raw.append((name, value))

    def on_headers_complete(self) -> None:
        if self.response is not None:
            self.response._headers_done(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        if self.response is not None:
            self.response._finish(self.parser.should_keep_alive())


def _until_close(response: Response) -> bool:
    return response.content_length is None and "Transfer-Encoding" not in response.headers


def _broken(response: Response, why: str) -> Exception:
    if not response._head.done():
        return aiohttp.ServerDisconnectedError(why)
    return aiohttp.ClientPayloadError(f"{why} before the end of the answer")


class Pool:
    """The idle connections to one host and port, newest last."""

    __slots__ = ("host", "idle", "pools", "port")

    def __init__(self, host: str, port: int, pools: dict[tuple[str, int], Pool]) -> None:
        self.host = host
        self.port = port
        self.idle: list[_Connection] = []
        self.pools = pools
        """The client's pools: a sweep may drop this one while a connection of it is in use."""

    def put(self, conn: _Connection) -> None:
        conn.response = None
        conn.idle_since = conn.loop.time()
        self.pools.setdefault((self.host, self.port), self).idle.append(conn)

    def take(self, now: float) -> _Connection | None:
        while self.idle:
            conn = self.idle.pop()
            transport = conn.transport
            if conn.closed or transport is None or transport.is_closing():
                continue
            if now - conn.idle_since > KEEPALIVE:
                conn.close()
                continue
            return conn
        return None


class Client:
    """Keep-alive pools by host and port; see the module docstring. ``limit`` > 0: at most
    so many connections open at once (idle ones are closed to make room). A client serves the
    loop of its first request (its connections belong to that loop)."""

    def __init__(self, connect_timeout: float, limit: int = 0) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        """Kept at the first request: ``asyncio.get_running_loop()`` is a ``getpid()`` call."""
        self.connect_timeout = connect_timeout
        self.pools: dict[tuple[str, int], Pool] = {}
        self.slots = asyncio.Semaphore(limit) if limit > 0 else None
        self.next_sweep = 0.0

    async def post(
        self, place: tuple[str, int, str, str], payload: bytes, headers: Mapping[str, str] | bytes
    ) -> Response:
        """Send; return once the answer's status and headers are in (its body follows).
        ``headers``: a mapping, or already header lines (:mod:`~.forwarded`)."""
        host, port, path, netloc = place
        data = forwarded.request(path, netloc, payload, headers)
        loop = self.loop
        if loop is None:
            loop = self.loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= self.next_sweep:
            self.sweep(now)
        pool = self.pools.get((host, port))
        if pool is None:
            pool = self.pools[(host, port)] = Pool(host, port, self.pools)
        conn = pool.take(now)
        if conn is not None:
            response = Response(conn)
            conn.send(data, response)
            try:
                await _head(response)
                return response
            except aiohttp.ServerDisconnectedError:
                if conn.received:
                    raise
                # closed by the server while idle: send it again on a new connection
        conn = await self._connect(pool, loop)
        response = Response(conn)
        conn.send(data, response)
        await _head(response)
        return response

    async def _connect(self, pool: Pool, loop: asyncio.AbstractEventLoop) -> _Connection:
        slots = self.slots
        if slots is not None:
            if slots.locked():
                self._close_one_idle()
            await slots.acquire()
        made: list[_Connection] = []

        def protocol() -> _Connection:
            made.append(_Connection(pool, loop, slots))
            return made[-1]

        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(protocol, pool.host, pool.port)
        except BaseException as exc:
            if made and made[0].transport is not None:
                made[0].close()  # its connection_lost frees the slot
            elif slots is not None:
                slots.release()
            if isinstance(exc, OSError):
                where = f"{pool.host}:{pool.port}"
                raise aiohttp.ClientConnectionError(f"cannot connect to {where}: {exc}") from exc
            raise
        return conn

    def _close_one_idle(self) -> None:
        for pool in self.pools.values():
            if pool.idle:
                pool.idle.pop(0).close()
                return

    def sweep(self, now: float) -> None:
        """Close the connections idle too long, and forget pools left empty (pods come and go:
        a gone pod's connections would otherwise stay, as its address is never asked again)."""
        self.next_sweep = now + KEEPALIVE / 2
        for key, pool in list(self.pools.items()):
            kept = []
            for conn in pool.idle:
                if conn.closed or now - conn.idle_since > KEEPALIVE:
                    conn.close()
                else:
                    kept.append(conn)
            pool.idle = kept
            if not kept:
                del self.pools[key]

    def close(self) -> None:
        for pool in self.pools.values():
            for conn in pool.idle:
                conn.close()
            pool.idle.clear()


async def _head(response: Response) -> None:
    """Wait for the answer's head; a cancelled wait leaves the connection unusable: closed."""
    try:
        await response._head
    except BaseException:
        response.close()
        raise
