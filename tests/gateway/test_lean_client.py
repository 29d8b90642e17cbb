"""The lean upstream client: answers of every framing, streams as they come, kept-alive
connections, and the failures the retry paths expect. Against a real TCP server that writes
its answers byte for byte, on asyncio's loop and on uvloop."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import IO, Any, TypeVar

import aiohttp
import multidict
import pytest
import uvloop

from modelyard.gateway import forwarded, lean, routes, upstream

T = TypeVar("T")
Handler = Callable[[socket.socket, IO[bytes], int], None]
"""Serves one connection: its socket, a reader of it, and its number (0 for the first)."""

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a": true}'


class Server:
    """A TCP server that runs ``handler`` for each connection, in a thread of its own."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            number, self.connections = self.connections, self.connections + 1
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn, conn.makefile("rb") as reader:
            self.handler(conn, reader, number)

    def read_request(self, reader: IO[bytes]) -> bytes | None:
        """One request's body (its head checked), None when the client closed."""
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = reader.readline()
            if not line:
                return None
            head += line
        assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = reader.read(length)
        self.requests.append(body)
        return body

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Iterator[Callable[[Coroutine[Any, Any, T]], T]]:
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(asyncio.wait_for(coro, 20))

    yield run


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    servers: list[Server] = []

    def serve(handler: Handler) -> Server:
        servers.append(Server(handler))
        return servers[-1]

    yield serve
    for server in servers:
        server.close()


async def _post(client: lean.Client, url: str, body: bytes = b'{"x": 1}') -> lean.Response:
    place = lean.address(url)
    assert place is not None
    return await client.post(place, body, {"Content-Type": "application/json", "X-Trace": "t1"})


async def _read_all(response: lean.Response) -> bytes:
    chunks = []
    while chunk := await response.content.readany():
        chunks.append(chunk)
    response.release()
    return b"".join(chunks)


def test_a_content_length_answer_and_the_connection_kept_for_the_next(serve: Any, run: Any) -> None:
    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        while server.read_request(reader) is not None:
            conn.sendall(OK)

    server = serve(handler)

    async def main() -> list[tuple[int, str, int | None, bytes]]:
        client = lean.Client(connect_timeout=5)
        seen = []
        for _ in range(3):
            response = await _post(client, server.url)
            body = await _read_all(response)
            seen.append((response.status, response.content_type, response.content_length, body))
        client.close()
        return seen

    assert run(main()) == [(200, "application/json", 11, b'{"a": true}')] * 3
    assert server.connections == 1 and server.requests == [b'{"x": 1}'] * 3


def test_a_chunked_answer(serve: Any, run: Any) -> None:
    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        while server.read_request(reader) is not None:
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n")
            conn.sendall(b"5\r\nhello\r\n")
            conn.sendall(b"6\r\n world\r\n0\r\n\r\n")

    server = serve(handler)

    async def main() -> tuple[int, str | None, bytes, bytes]:
        client = lean.Client(connect_timeout=5)
        first = await _post(client, server.url)
        body = await _read_all(first)
        second = await _post(client, server.url)
        again = await _read_all(second)
        client.close()
        return first.status, first.headers.get("x-up"), body, again

    assert run(main()) == (503, "1", b"hello world", b"hello world")
    assert server.connections == 1


def test_an_answer_that_ends_when_the_connection_closes(serve: Any, run: Any) -> None:
    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        server.read_request(reader)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the")
        conn.sendall(b" end")

    server = serve(handler)

    async def main() -> bytes:
        client = lean.Client(connect_timeout=5)
        body = await _read_all(await _post(client, server.url))
        client.close()
        return body

    assert run(main()) == b"until the end"


def test_a_stream_is_read_as_each_event_comes(serve: Any, run: Any) -> None:
    more = threading.Event()

    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        server.read_request(reader)
        conn.sendall(SSE_HEAD)
        conn.sendall(b"d\r\ndata: first\n\n\r\n")
        more.wait(15)  # the rest only once the client has the first event
        conn.sendall(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")

    server = serve(handler)

    async def main() -> list[bytes]:
        client = lean.Client(connect_timeout=5)
        response = await _post(client, server.url)
        assert response.content_type == "text/event-stream"
        first = await response.content.readany()
        more.set()
        rest = await _read_all(response)
        client.close()
        return [first, rest]

    assert run(main()) == [b"data: first\n\n", b"data: second\n\n"]


def test_a_connection_closed_mid_body_is_the_read_failure(serve: Any, run: Any) -> None:
    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        server.read_request(reader)
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')

    server = serve(handler)
    target = routes.Target("ns/a@x", server.url.removesuffix("/chat/completions"))

    async def main() -> tuple[str, str]:
        client = lean.Client(connect_timeout=5)
        response = await _post(client, server.url)
        with pytest.raises(aiohttp.ClientPayloadError):
            await _read_all(response)
        both = upstream.Client(aiohttp.ClientSession(), client)
        answer = await upstream.send(both, target, "/chat/completions", b"{}", {}, None, 1000)
        try:
            await upstream.read_body(answer, 1000)
        except upstream.AttemptFailed as exc:
            return exc.reason, str(exc)
        finally:
            await both.close()
        raise AssertionError("the broken answer was read as whole")

    reason, message = run(main())
    assert reason == "read" and "ClientPayloadError" in message


def test_no_server_is_the_connect_failure(run: Any) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    target = routes.Target("ns/a@x", f"http://127.0.0.1:{port}/v1")

    async def main() -> str:
        both = upstream.Client(aiohttp.ClientSession(), lean.Client(connect_timeout=5))
        try:
            await upstream.send(both, target, "/chat/completions", b"{}", {}, None, 1000)
        except upstream.AttemptFailed as exc:
            return exc.reason
        finally:
            await both.close()
        raise AssertionError("a request to no server succeeded")

    assert run(main()) == "connect"


def test_a_pooled_connection_the_server_closed_is_replaced_not_reported(serve: Any, run: Any) -> None:
    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        server.read_request(reader)
        if number == 0:
            conn.sendall(OK)  # kept alive, as far as the client knows...
            server.read_request(reader)  # ...and closed as the next request arrives
            return
        conn.sendall(OK)

    server = serve(handler)

    async def main() -> list[bytes]:
        client = lean.Client(connect_timeout=5)
        bodies = [await _read_all(await _post(client, server.url)) for _ in range(2)]
        client.close()
        return bodies

    assert run(main()) == [b'{"a": true}'] * 2
    assert server.connections == 2 and len(server.requests) == 3


def test_a_connection_that_closes_after_part_of_the_head_is_reported(serve: Any, run: Any) -> None:
    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        server.read_request(reader)
        if number == 0:
            conn.sendall(OK)
            server.read_request(reader)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-")  # an answer had begun: not sent again

    server = serve(handler)

    async def main() -> None:
        client = lean.Client(connect_timeout=5)
        await _read_all(await _post(client, server.url))
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await _post(client, server.url)
        client.close()

    run(main())
    assert server.connections == 1


def test_only_plain_http_urls_take_the_lean_path() -> None:
    assert lean.address("http://10.0.0.5:8000/v1/chat/completions") == (
        "10.0.0.5",
        8000,
        "/v1/chat/completions",
        "10.0.0.5:8000",
    )
    assert lean.address("http://[::1]/v1/models?x=1") == ("::1", 80, "/v1/models?x=1", "[::1]")
    assert lean.address("https://api.openai.com/v1/chat/completions") is None
    assert lean.address("http://user:secret@10.0.0.5/v1") is None


def test_a_read_that_waits_longer_than_its_limit_is_a_timeout(serve: Any, run: Any) -> None:
    done = threading.Event()

    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        server.read_request(reader)
        conn.sendall(SSE_HEAD + b"d\r\ndata: first\n\n\r\n")
        done.wait(15)  # then silence: a stalled model server

    server = serve(handler)

    async def main() -> bytes:
        client = lean.Client(connect_timeout=5)
        response = await _post(client, server.url)
        first = await response.readany(0.2)  # came before the limit: returned, no timer left behind
        with pytest.raises(TimeoutError):
            await response.readany(0.2)
        response.close()
        client.close()
        return first

    try:
        assert run(main()) == b"data: first\n\n"
    finally:
        done.set()


def test_an_answer_larger_than_the_read_buffer_arrives_whole_and_the_connection_is_reused(
    serve: Any, run: Any
) -> None:
    big = bytes(range(256)) * (4 * lean.HIGH_WATER // 256)

    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        while server.read_request(reader) is not None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big)

    server = serve(handler)

    async def main() -> list[bool]:
        client = lean.Client(connect_timeout=5)
        seen = []
        for _ in range(2):
            response = await _post(client, server.url)
            await asyncio.sleep(0.2)  # the reader is late: the socket is no longer read meanwhile
            seen.append(await _read_all(response) == big)
        client.close()
        return seen

    assert run(main()) == [True, True]
    assert server.connections == 1


def test_idle_connections_past_their_time_are_closed_and_their_pool_forgotten(serve: Any, run: Any) -> None:
    closed = threading.Event()

    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        while server.read_request(reader) is not None:
            conn.sendall(OK)
        if number == 0:
            closed.set()  # the client closed the first connection

    server = serve(handler)

    async def main() -> bytes:
        client = lean.Client(connect_timeout=5)
        await _read_all(await _post(client, server.url))
        client.sweep(asyncio.get_running_loop().time() + lean.KEEPALIVE + 1)
        assert client.pools == {}
        assert await asyncio.to_thread(closed.wait, 15)
        body = await _read_all(await _post(client, server.url))
        client.close()
        return body

    assert run(main()) == b'{"a": true}'
    assert server.connections == 2


def test_an_answer_read_and_released_leaves_no_garbage_for_the_collector(serve: Any, run: Any) -> None:
    """Freed by its reference count alone: an answer that referred to itself waited for a
    collection of the youngest generation, a few per hundred requests under load."""

    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        while server.read_request(reader) is not None:
            conn.sendall(OK)

    server = serve(handler)

    async def main() -> list[str]:
        client = lean.Client(connect_timeout=5)
        await _read_all(await _post(client, server.url))  # the connection made, and pooled
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                assert await _read_all(await _post(client, server.url)) == b'{"a": true}'
            gc.collect()
            return [type(o).__name__ for o in gc.garbage]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            client.close()

    gc.disable()
    try:
        assert run(main()) == []
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "name, value", [("X-A", "b\r\nX-Injected: 1"), ("X-A", "b\nc"), ("X-A", "b\rc"), ("X-A\r\nX-B", "c")]
)
def test_a_header_with_a_line_break_is_not_sent(run: Any, name: str, value: str) -> None:
    async def main() -> None:
        client = lean.Client(connect_timeout=5)
        place = lean.address("http://127.0.0.1:9/v1/chat/completions")
        assert place is not None
        with pytest.raises(aiohttp.ClientConnectionError, match="line break"):
            await client.post(place, b"{}", {name: value})
        assert client.pools == {}  # refused before any connection

    run(main())


def test_the_forwarded_headers_drop_hop_by_hop_ones_and_credentials_and_add_upstreams() -> None:
    incoming = multidict.CIMultiDict(
        [
            ("Host", "gw"),
            ("Authorization", "Bearer sk-client"),
            ("content-length", "12"),
            ("Accept-Encoding", "gzip"),
            ("Content-Type", "application/json"),
            ("X-Trace", "t1"),
            ("x-trace", "t2"),
            ("X-Team", "red"),
        ]
    )
    plain = forwarded.request_headers(incoming, None)
    assert list(plain.items()) == [
        ("Content-Type", "application/json"),
        ("X-Trace", "t1"),
        ("x-trace", "t2"),
        ("X-Team", "red"),
        ("Accept-Encoding", "identity"),
    ]
    up = routes.Upstream(model="m", headers=(("x-team", "blue"),), api_key="sk-up")
    relayed = forwarded.request_headers(incoming, up)
    assert relayed.getall("X-Team") == ["blue"] and relayed["Authorization"] == "Bearer sk-up"
    assert relayed.getall("X-Trace") == ["t1", "t2"] and relayed["Accept-Encoding"] == "identity"


def test_a_pods_header_lines_come_from_the_raw_bytes_and_say_what_the_mapping_says() -> None:
    raw = (
        (b"Host", b"gw"),
        (b"Authorization", b"Bearer sk-client"),
        (b"Content-Type", b"application/json"),
        (b"X-Trace", b"t1"),
        (b"x-trace", b"t2"),
        (b"X-Name", "caf\u00e9".encode()),
        (b"Connection", b"keep-alive"),
    )
    incoming = multidict.CIMultiDict((n.decode(), v.decode("utf-8", "surrogateescape")) for n, v in raw)
    pod = forwarded.Forwarded(incoming, raw, None)
    assert pod.lines() == forwarded.lines(forwarded.request_headers(incoming, None))
    assert pod.lines() == (
        b"Content-Type: application/json\r\nX-Trace: t1\r\nx-trace: t2\r\n"
        + "X-Name: caf\u00e9\r\n".encode()
        + b"Accept-Encoding: identity\r\n"
    )
    up = routes.Upstream(headers=(("x-trace", "up"),), api_key="sk-up")
    api = forwarded.Forwarded(incoming, raw, up)
    assert b"x-trace: up\r\n" in api.lines() and b"t1" not in api.lines()
    assert b"Authorization: Bearer sk-up\r\n" in api.lines() and b"sk-client" not in api.lines()
    broken = forwarded.Forwarded(incoming, ((b"X-A", b"b\nc"),), None)
    with pytest.raises(aiohttp.ClientConnectionError, match="line break"):
        broken.lines()


def test_both_clients_send_the_same_forwarded_headers(serve: Any, run: Any) -> None:
    """A pod's URL goes to the lean client (the header lines), any other to aiohttp's session
    (the mapping): the same headers reach the server either way (aiohttp adds its own
    ``Accept: */*``, and each its Host and Content-Length: left out of the comparison)."""
    heads: list[dict[str, str]] = []

    def handler(conn: socket.socket, reader: IO[bytes], number: int) -> None:
        while True:
            lines = []
            while (line := reader.readline()) not in (b"\r\n", b""):
                lines.append(line.decode().rstrip("\r\n"))
            if not lines:
                return
            fields = dict(line.split(": ", 1) for line in lines[1:])
            heads.append(
                {
                    k.lower(): v
                    for k, v in fields.items()
                    if k.lower() not in ("host", "content-length", "accept")
                }
            )
            reader.read(int(fields.get("Content-Length", "0")))
            conn.sendall(OK)

    server = serve(handler)
    raw = (
        (b"Authorization", b"Bearer sk-client"),
        (b"Content-Type", b"application/json"),
        (b"X-Org", b"red"),
    )
    incoming = multidict.CIMultiDict((n.decode(), v.decode()) for n, v in raw)
    up = routes.Upstream(headers=(("X-Org", "acme"),), api_key="sk-up")

    async def main() -> None:
        import aiohttp

        session = aiohttp.ClientSession(skip_auto_headers=("User-Agent",))
        client = upstream.Client(session, lean.Client(connect_timeout=5))
        for url in (server.url, server.url.replace("http://", "HTTP://")):  # lean, then aiohttp
            for sent in (forwarded.Forwarded(incoming, raw, up), forwarded.Forwarded(incoming, raw, None)):
                response = await client.post(url, b"{}", sent)
                await upstream.read_body(response, 1 << 20)
        await client.close()

    run(main())
    with_key = {"authorization": "Bearer sk-up", "content-type": "application/json", "x-org": "acme"}
    pod = {"content-type": "application/json", "x-org": "red"}
    for head, expected in zip(heads, [with_key, pod, with_key, pod], strict=True):
        assert head == {**expected, "accept-encoding": "identity"}
