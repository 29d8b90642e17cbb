"""A real ``modelyard gateway`` process, a fast fake model server, and a flooding client.

:func:`gateway` starts the gateway as users run it (``python -m modelyard gateway ...``) on a
port of its own and yields its URL once ``/healthz`` answers; its log goes to a file the test
can read. :class:`FakeModel` answers chat completions at once, on a background loop.
:func:`flood` runs ``python gatewaykit.py flood ...`` in a process of its own, so that the
attacker does not share the measuring client's interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests
from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gateway(args: Sequence[str], log: Path, timeout: float = 60) -> Iterator[str]:
    """``modelyard gateway *args`` on 127.0.0.1; yields ``http://127.0.0.1:<port>``."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "modelyard",
        "gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"the gateway exited: {log.read_text()[-2000:]}"
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"the gateway did not listen: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


class FakeModel:
    """An OpenAI chat server that answers at once, with a usage of 5 + 7 tokens."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.requests = 0
        self.url = ""

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests += 1
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            }
        )

    def __enter__(self) -> FakeModel:
        self.thread.start()

        async def start() -> str:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

        self.url = asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)
        return self

    def __exit__(self, *_: object) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def chat(client: requests.Session, url: str, key: str, model: str = "llama") -> requests.Response:
    payload = {"model": model, "messages": [{"role": "user", "content": "x"}]}
    headers = {"Authorization": f"Bearer {key}"}
    return client.post(f"{url}/v1/chat/completions", json=payload, headers=headers, timeout=30)


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def measure(url: str, key: str, seconds: float) -> tuple[list[float], list[int]]:
    """A well-behaved client: one request at a time for ``seconds``; latencies and statuses."""
    latencies: list[float] = []
    statuses: list[int] = []
    with requests.Session() as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            statuses.append(chat(client, url, key).status_code)
            latencies.append(time.perf_counter() - started)
    return latencies, statuses


@contextlib.contextmanager
def flood(url: str, key: str, seconds: float, connections: int) -> Iterator[subprocess.Popen[str]]:
    """A process sending requests with ``key`` on ``connections`` threads for ``seconds``;
    it prints ``{"status": count, "retry_after": [...]}`` as JSON when done."""
    command = [sys.executable, __file__, "flood", url, key, str(seconds), str(connections)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _flood_main(url: str, key: str, seconds: float, connections: int) -> None:
    counts: dict[str, int] = {}
    retry_after: set[str] = set()
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker() -> None:
        with requests.Session() as client:
            while time.monotonic() < end:
                try:
                    response = chat(client, url, key)
                except requests.RequestException as exc:
                    status, after = type(exc).__name__, None
                else:
                    status, after = str(response.status_code), response.headers.get("Retry-After")
                with lock:
                    counts[status] = counts.get(status, 0) + 1
                    if after is not None:
                        retry_after.add(after)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"status": counts, "retry_after": sorted(retry_after)}))


def flood_result(process: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-2000:]
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


if __name__ == "__main__" and sys.argv[1:2] == ["flood"]:
    _flood_main(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
