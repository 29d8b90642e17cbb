"""A bearer token that is not UTF-8 at the status API is a 401 like any wrong token (it was a
500: the comparison encoded the header's surrogate escapes and raised)."""

from __future__ import annotations

import asyncio
import socket

import kit
from modelyard import statusapi
from modelyard.statusapi import app as status_app
from modelyard.statusapi import settings


def _raw_get(port: int, authorization: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(
            b"GET /api/v1/endpoints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: " + authorization + b"\r\n\r\n"
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


async def _statuses(headers: list[bytes]) -> list[bytes]:
    app = status_app.create_app(settings.StatusApiSettings(token="s3cret"), statusapi.Cache())
    async with kit.aiohttp_port(app) as port:
        answers = []
        for header in headers:
            answers.append(await asyncio.to_thread(_raw_get, port, header))
        return [a.split(b"\r\n", 1)[0] for a in answers]


def test_non_utf8_bearer_tokens_are_unauthorized() -> None:
    lines = asyncio.run(
        _statuses([b"Bearer \xff\xfe\xfd", b"Bearer s3cret\xc3", b"Bearer \xe2\x82", b"Bearer s3cret"])
    )
    assert lines[:3] == [b"HTTP/1.1 401 Unauthorized"] * 3, lines
    assert lines[3] == b"HTTP/1.1 200 OK", lines
