"""One attempt against one target: the outgoing request, and what counts as a retryable failure.

An attempt fails *retryably* before the client has seen a byte of the answer: the target
refused or dropped the connection, answered 5xx, or gave no first byte within the attempt
timeout. Anything else (2xx, 4xx) is the answer and is relayed as it is. An answer larger
than ``--max-response-bytes`` is not read to its end: the attempt fails (and is retried).

Requests to plain-HTTP targets (the pods) go through the lean client of
:mod:`modelyard.gateway.lean`; any other URL (an upstream API on ``https://``) through
aiohttp's ``ClientSession``. Both answer with an :class:`Answer` and fail with aiohttp's
exception classes, so what follows does not tell them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Mapping
from typing import Protocol

import aiohttp
import multidict
import yarl

from modelyard.gateway import forwarded, lean, routes

# Response headers never relayed back: hop-by-hop, and those the gateway's server sets.
DROP_RESPONSE = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Content-Length",
        "Content-Encoding",
        "Date",
        "Server",
        "Trailer",
        "Upgrade",
        "Proxy-Authenticate",
        "Set-Cookie",
    )
)


class AttemptFailed(Exception):
    """A retryable failure of one attempt; ``reason`` labels the retry metric."""

    def __init__(self, reason: str, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class ServerError(AttemptFailed):
    """The target answered 5xx; kept so the last one can be relayed if every attempt fails."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        super().__init__("status_5xx", f"the model server answered {status}", status)
        self.body = body
        self.headers = dict(headers)


class TooLarge(AttemptFailed):
    """The model server sent more than a bound allows; ``limit`` names the bound."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(limit, message)
        self.limit = limit


class Body(Protocol):
    async def readany(self) -> bytes: ...


class Answer(Protocol):
    """What the proxy reads of an answer: ``aiohttp.ClientResponse`` or ``lean.Response``."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content_type(self) -> str: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def content(self) -> Body: ...
    def close(self) -> None: ...
    def release(self) -> object: ...


class Client:
    """Sends an attempt's request: the lean client for ``http://``, aiohttp for the rest."""

    def __init__(self, session: aiohttp.ClientSession, fast: lean.Client) -> None:
        self.session = session
        self.fast = fast

    def post(
        self, url: str, payload: bytes, headers: forwarded.Forwarded | Mapping[str, str]
    ) -> Awaitable[Answer]:
        """The request, to be awaited (one coroutine less on the hot path than an ``async def``:
        a line break in a header raises here already, before anything is sent)."""
        place = lean.address(url)
        if isinstance(headers, forwarded.Forwarded):
            if place is not None:
                return self.fast.post(place, payload, headers.lines())
            return self.session.post(_url(url), data=payload, headers=headers.mapping())
        if place is not None:
            return self.fast.post(place, payload, headers)
        return self.session.post(_url(url), data=payload, headers=headers)

    async def close(self) -> None:
        self.fast.close()
        await self.session.close()


async def read_body(response: Answer, limit: int) -> bytes:
    """The whole answer, read up to ``limit`` bytes; beyond, the connection is dropped."""
    if response.content_length is not None and response.content_length > limit:
        response.close()
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await response.content.readany():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                chunks.clear()  # not kept alive by the exception's traceback
                response.close()
                raise _too_large(limit)
    except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
        response.close()
        raise AttemptFailed("read", f"the answer broke off ({type(exc).__name__})") from None
    except asyncio.CancelledError:  # the request timed out, or the client left
        response.close()
        raise
    response.release()
    return b"".join(chunks)


def _too_large(limit: int) -> TooLarge:
    message = f"the model server's answer is larger than {limit} bytes (--max-response-bytes)"
    return TooLarge("max_response_bytes", message)


_UNTIMED = contextlib.nullcontext()


def within(timeout: float | None) -> contextlib.AbstractAsyncContextManager[object]:
    """``asyncio.timeout(timeout)``, or nothing at all for None: a timer armed and cancelled per
    request is a measurable share of the gateway's cost (docs/benchmarks.md, "Gateway hot path")."""
    return asyncio.timeout(timeout) if timeout is not None else _UNTIMED


def seconds(timeout: float | None) -> str:
    return f" within {timeout:g}s" if timeout is not None else " in time"


@functools.lru_cache(maxsize=4096)
def _url(text: str) -> yarl.URL:
    """Parsed once per target and path, not once per request."""
    return yarl.URL(text)


def response_headers(headers: Mapping[str, str]) -> multidict.CIMultiDict[str]:
    """The answer's headers a client gets (built in one call, as the forwarded ones are)."""
    return multidict.CIMultiDict([(n, v) for n, v in headers.items() if n.lower() not in DROP_RESPONSE])


async def send(
    client: Client,
    target: routes.Target,
    suffix: str,
    payload: bytes,
    headers: forwarded.Forwarded | Mapping[str, str],
    timeout: float | None,
    limit: int,
) -> Answer:
    """POST to the target and wait for the response headers; 5xx and errors raise AttemptFailed
    (a 5xx body is read up to ``limit`` bytes). ``timeout`` None: no timer of the attempt's own
    (the request's timeout, started earlier, bounds it)."""
    try:
        async with within(timeout):
            response = await client.post(target.base + suffix, payload, headers)
            if response.status >= 500:
                raise ServerError(response.status, await read_body(response, limit), response.headers)
    except TimeoutError:  # the attempt's timer, or aiohttp's connect timeout
        raise AttemptFailed("timeout", f"no answer{seconds(timeout)}", 504) from None
    except aiohttp.ClientError as exc:
        raise AttemptFailed("connect", f"cannot reach the model server ({type(exc).__name__})") from None
    return response
