"""The headers an attempt forwards to a model server, and the head of the lean client's request.

The client's headers, less the dropped ones (:data:`DROP_REQUEST`: hop-by-hop ones, those the
sending client sets itself, the client's credentials for the gateway), plus
``Accept-Encoding: identity``, plus an upstream API's own headers and key. A :class:`Forwarded`
renders them for the client that sends the attempt, once per request (a retry reuses them):
for aiohttp's ``ClientSession`` as a ``CIMultiDict`` (:meth:`Forwarded.mapping`), for the lean
client (:mod:`~.lean`) as the request's header lines (:meth:`Forwarded.lines`), which for a pod
(no upstream headers) are taken from the request's raw header bytes as they came, without
decoding them to text and encoding them back (that, and the headers built twice, were a
measurable share of the hot path: docs/benchmarks.md, "Issue #19, seventh pass").

A header with a line break is never sent: it would let a value inject a header of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import aiohttp
import multidict

from modelyard.gateway import routes

DROP_REQUEST = frozenset(
    h.lower()
    for h in (
        "Host",
        "Connection",
        "Keep-Alive",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
        "Accept-Encoding",
        "Authorization",
        "Cookie",
        "Expect",
    )
)
_DROP_RAW = frozenset(h.encode() for h in DROP_REQUEST)
_IDENTITY = b"Accept-Encoding: identity"


def request_headers(
    incoming: Mapping[str, str], upstream: routes.Upstream | None
) -> multidict.CIMultiDict[str]:
    """Headers for the outgoing request: the client's, less the dropped ones, plus upstream's."""
    kept = [(name, value) for name, value in incoming.items() if name.lower() not in DROP_REQUEST]
    kept.append(("Accept-Encoding", "identity"))  # (dropped above: never the client's)
    headers: multidict.CIMultiDict[str] = multidict.CIMultiDict(kept)  # built in one call
    if upstream is not None:
        for name, value in upstream.headers:
            headers[name] = value
        if upstream.api_key:
            headers["Authorization"] = f"Bearer {upstream.api_key}"
    return headers


class Forwarded:
    """One request's forwarded headers, rendered on demand for either client."""

    __slots__ = ("_incoming", "_lines", "_mapping", "_raw", "_upstream")

    def __init__(
        self,
        incoming: Mapping[str, str],
        raw: tuple[tuple[bytes, bytes], ...],
        upstream: routes.Upstream | None,
    ) -> None:
        self._incoming = incoming
        self._raw = raw
        """The same headers as the request's bytes (aiohttp's ``request.raw_headers``)."""
        self._upstream = upstream
        self._mapping: multidict.CIMultiDict[str] | None = None
        self._lines: bytes | None = None

    def mapping(self) -> multidict.CIMultiDict[str]:
        if self._mapping is None:
            self._mapping = request_headers(self._incoming, self._upstream)
        return self._mapping

    def lines(self) -> bytes:
        """The header lines, each ending in CRLF; ClientConnectionError for a line break."""
        if self._lines is None:
            up = self._upstream
            if up is not None and (up.headers or up.api_key):
                self._lines = lines(self.mapping())
            else:
                self._lines = _raw_lines(self._raw)
        return self._lines


def _raw_lines(raw: tuple[tuple[bytes, bytes], ...]) -> bytes:
    kept = [name + b": " + value for name, value in raw if name.lower() not in _DROP_RAW]
    flat = b"".join(kept)  # (one look for a line break in all of them)
    if b"\n" in flat or b"\r" in flat:
        broken = next(line for line in kept if b"\n" in line or b"\r" in line)
        raise _line_break(broken.partition(b": ")[0].decode("latin-1"))
    kept.append(_IDENTITY)
    return b"\r\n".join(kept) + b"\r\n"


def lines(headers: Mapping[str, str]) -> bytes:
    """``headers`` as header lines, each ending in CRLF; ClientConnectionError for a line break."""
    text = []
    for name, value in headers.items():
        line = f"{name}: {value}"
        if "\n" in line or "\r" in line:
            raise _line_break(name)
        text.append(line + "\r\n")
    return "".join(text).encode("utf-8", "surrogateescape")


def _line_break(name: str) -> aiohttp.ClientConnectionError:
    return aiohttp.ClientConnectionError(f"the header {name!r} has a line break; not sent")


def request(path: str, netloc: str, payload: bytes, headers: Mapping[str, str] | bytes) -> bytes:
    """The lean client's POST: request line, Host, ``headers`` (a mapping, or already
    :func:`lines`), Content-Length, and the body."""
    if not isinstance(headers, bytes):
        headers = lines(headers)
    length = str(len(payload)).encode()
    return b"".join((_start(path, netloc), headers, b"Content-Length: ", length, b"\r\n\r\n", payload))


@functools.lru_cache(maxsize=4096)
def _start(path: str, netloc: str) -> bytes:
    """The request line and Host, once per target and path (as :func:`.lean.address` is)."""
    return f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\n".encode("utf-8", "surrogateescape")
