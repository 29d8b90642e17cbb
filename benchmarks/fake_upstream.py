"""A deliberately fast fake OpenAI server for benchmarks (not a test fixture).

A bare asyncio protocol with HTTP/1.1 keep-alive and no framework, so that it costs far less
than any proxy in front of it: the benchmark measures the proxy, not this. It answers every
POST with a fixed chat completion, or, when the body contains ``"stream": true``, with an
SSE stream of ``--chunks`` events, usage, and ``[DONE]``.

    python benchmarks/fake_upstream.py --port 9100 [--chunks 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json

_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "bench",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()


def _stream_body(chunks: int) -> bytes:
    events = []
    for i in range(chunks):
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "bench",
            "choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}],
        }
        events.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    last = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "bench",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": 5 + chunks},
    }
    events.append(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
    payload = b"".join(events)
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)


class _Http(asyncio.Protocol):
    def __init__(self, responses: tuple[bytes, bytes]) -> None:
        self.buffer = b""
        self.responses = responses
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end == -1:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at != -1:
                length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) != -1 else None])
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            if head.startswith(b"get"):
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            elif b'"stream": true' in body or b'"stream":true' in body:
                self.transport.write(self.responses[1])
            else:
                self.transport.write(self.responses[0])


async def serve(host: str, port: int, chunks: int) -> None:
    plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(_COMPLETION),
        _COMPLETION,
    )
    stream = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + _stream_body(chunks)
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Http((plain, stream)), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--chunks", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.chunks))


if __name__ == "__main__":
    main()
