"""A real gateway between a fake model server and two kinds of clients, for attack tests.

Three processes, so that what one of them does cannot slow another through the GIL:

- :class:`Upstream`: a fake OpenAI server (this file run as ``upstream``). What it does depends
  on the ``model`` of the request: ``chat`` answers at once (a chat completion, or three SSE
  events and ``[DONE]``); ``slow`` answers after a second; ``huge`` answers 200 with a JSON body
  of ``HUGE_BYTES``, written in 1 MiB pieces without a Content-Length; ``giant-event`` opens an
  event stream, sends one ordinary event, then one of ``HUGE_BYTES`` that never ends. It reads
  a body with msgspec, so a 32 MiB one costs it little. ``GET /stats`` returns
  the requests it saw and the most it had in flight at once (``POST /stats/reset`` zeroes them).
- :class:`Gateway`: ``modelyard gateway --routes FILE`` with the flags a test passes; every
  model above is routed to the one upstream, under the API keys ``sk-good`` and ``sk-bad``.
- :class:`WellBehaved`: an ordinary client (this file run as ``client``): a few workers in a
  loop, each sending a short chat request (plain and streamed in turn), reading the whole
  answer and waiting a little; it honours ``429`` + ``Retry-After`` as the OpenAI SDK does.
  It records the latency of every answered request, and every failure.

A test starts the well-behaved client, attacks the gateway from its own process, then stops the
client and reads its :class:`Report` (p50, p99, answered, failures)::

    with Upstream() as up, Gateway(up, "--max-in-flight", "40") as gw:
        baseline = measure(gw, seconds=5)
        with WellBehaved(gw) as good:
            ...attack gw.url...
        report = good.report
        assert report.failures == []
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

HERE = Path(__file__).resolve()
GOOD_KEY = "sk-good-0123456789"
BAD_KEY = "sk-bad-0123456789"
MODELS = ("chat", "slow", "huge", "giant-event")
HUGE_BYTES = 256 * 1024 * 1024
"""What the ``huge`` and ``giant-event`` models send: far beyond any sane bound."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Upstream:
    """The fake model server in a process of its own (see the module docstring)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Upstream:
        command = [sys.executable, str(HERE), "upstream", "--port", str(self.port)]
        self.process = subprocess.Popen(command)
        _wait_http(self.url + "/stats", self.process)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            _stop(self.process)

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as response:
            stats: dict[str, int] = json.loads(response.read())
            return stats

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/stats/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


class Gateway:
    """``modelyard gateway --routes FILE`` in front of an :class:`Upstream`, with extra flags."""

    def __init__(self, upstream: Upstream, *flags: str) -> None:
        self.upstream = upstream
        self.flags = flags
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None
        self.log = ""
        self._dir = tempfile.TemporaryDirectory(prefix="attackkit-")

    def __enter__(self) -> Gateway:
        routes = Path(self._dir.name) / "routes.json"
        models = [
            {"name": name, "endpoints": [{"name": f"attack/{name}", "urls": [self.upstream.url]}]}
            for name in MODELS
        ]
        routes.write_text(json.dumps({"models": models, "apiKeys": {"good": GOOD_KEY, "bad": BAD_KEY}}))
        command = [sys.executable, "-m", "modelyard", "gateway", "--routes", str(routes)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), *self.flags]
        self._logfile = open(Path(self._dir.name) / "gateway.log", "w+")
        self.process = subprocess.Popen(command, stdout=self._logfile, stderr=subprocess.STDOUT, text=True)
        _wait_http(self.url + "/readyz", self.process)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            _stop(self.process)
            self._logfile.seek(0)
            self.log = self._logfile.read()
            self._logfile.close()
        self._dir.cleanup()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            return str(response.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def peak_rss_bytes(self) -> int:
        """The gateway process's high-water resident set (``VmHWM``)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM in /proc")


@dataclasses.dataclass
class Report:
    """What the well-behaved client saw."""

    latencies: list[float]
    failures: list[str]
    throttled: int
    """429 answers it waited out (Retry-After) before being answered."""

    @property
    def answered(self) -> int:
        return len(self.latencies)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def line(self, label: str) -> str:
        return (
            f"{label:<34} answered {self.answered:>4}  failed {len(self.failures):>2}  "
            f"p50 {self.p50 * 1000:7.1f} ms  p99 {self.p99 * 1000:7.1f} ms  throttled {self.throttled}"
        )


class WellBehaved:
    """The well-behaved client in a process of its own, running while the ``with`` block runs."""

    def __init__(self, gateway: Gateway, workers: int = 4, pause: float = 0.02, timeout: float = 60) -> None:
        self.command = [sys.executable, str(HERE), "client", "--url", gateway.url]
        self.command += ["--workers", str(workers), "--pause", str(pause), "--timeout", str(timeout)]
        self.process: subprocess.Popen[str] | None = None
        self.report = Report([], [], 0)

    def __enter__(self) -> WellBehaved:
        pipe = subprocess.PIPE
        self.process = subprocess.Popen(self.command, stdin=pipe, stdout=pipe, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "started", "the client did not start"
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.process is not None
        out, _ = self.process.communicate("stop\n", timeout=120)
        data = json.loads(out)
        self.report = Report(data["latencies"], data["failures"], data["throttled"])


def measure(gateway: Gateway, seconds: float = 5.0, **kw: Any) -> Report:
    """The well-behaved client alone for ``seconds``: the baseline."""
    with WellBehaved(gateway, **kw) as good:
        time.sleep(seconds)
    return good.report


def in_background(target: Any, *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


# ---- the processes (this file run as a script) ----------------------------------------------


def _chat(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], "stream": stream}


async def _client(url: str, workers: int, pause: float, timeout: float) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    failures: list[str] = []
    throttled = 0
    stopping = asyncio.Event()
    headers = {"Authorization": f"Bearer {GOOD_KEY}"}

    async def one(session: aiohttp.ClientSession, stream: bool) -> None:
        nonlocal throttled
        started = time.monotonic()
        for _ in range(30):
            async with session.post(
                url + "/v1/chat/completions", json=_chat("chat", stream), headers=headers
            ) as response:
                data = await response.read()
                if response.status == 429 and "Retry-After" in response.headers:
                    throttled += 1
                    await asyncio.sleep(float(response.headers["Retry-After"]))
                    continue
                if response.status != 200:
                    failures.append(f"{response.status}: {data[:200]!r}")
                elif stream and not data.rstrip().endswith(b"data: [DONE]"):
                    failures.append(f"stream did not end with [DONE]: {data[-200:]!r}")
                elif stream and b'"error"' in data:
                    failures.append(f"error event: {data[-300:]!r}")
                elif not stream and b"hello from upstream" not in data:
                    failures.append(f"unexpected answer: {data[:200]!r}")
                else:
                    latencies.append(time.monotonic() - started)
                return
        failures.append("still throttled after 30 tries")

    async def worker(index: int) -> None:
        stream = bool(index % 2)
        connector = aiohttp.TCPConnector(limit=1)
        limits = aiohttp.ClientTimeout(total=timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=limits) as session:
            while not stopping.is_set():
                try:
                    await one(session, stream)
                except Exception as exc:  # a timeout or a dropped connection: a failure
                    failures.append(f"{type(exc).__name__}: {exc}")
                stream = not stream
                await asyncio.sleep(pause)

    async def wait_for_stop() -> None:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        stopping.set()

    tasks = [asyncio.create_task(worker(i)) for i in range(workers)]
    print("started", flush=True)
    await wait_for_stop()
    await asyncio.gather(*tasks)
    return {"latencies": latencies, "failures": failures, "throttled": throttled}


async def _upstream(port: int) -> None:
    import msgspec
    from aiohttp import web

    class Chat(msgspec.Struct):
        model: str
        stream: bool = False

    chat_request = msgspec.json.Decoder(Chat)

    state = {"in_flight": 0, "max_in_flight": 0, "requests": 0}
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "chat",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ""}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }
    piece = b"x" * (1024 * 1024)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(state)

    async def reset(request: web.Request) -> web.Response:
        state.update(max_in_flight=state["in_flight"], requests=0)
        return web.json_response(state)

    async def chat(request: web.Request) -> web.StreamResponse:
        state["requests"] += 1
        state["in_flight"] += 1
        state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            return await _answer(request)
        except ConnectionError:  # the gateway dropped a huge answer: what the test wants
            return web.Response(status=499)
        finally:
            state["in_flight"] -= 1

    async def _answer(request: web.Request) -> web.StreamResponse:
        body = chat_request.decode(await request.read())
        model = body.model
        if model == "slow":
            await asyncio.sleep(1.0)
        if model == "huge":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(b'{"id": "chatcmpl-huge", "padding": "')
            for _ in range(HUGE_BYTES // len(piece)):
                await response.write(piece)
            await response.write(b'"}')
            await response.write_eof()
            return response
        if body.stream:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            if model == "giant-event":
                await response.write(b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n')
                await response.write(b'data: {"choices": [{"delta": {"content": "')
                for _ in range(HUGE_BYTES // len(piece)):
                    await response.write(piece)
                await response.write_eof()
                return response
            for word in ("hello", " from", " upstream"):
                chunk = {"object": "chat.completion.chunk", "model": model}
                chunk["choices"] = [{"index": 0, "delta": {"content": word}, "finish_reason": None}]
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        reply = json.loads(json.dumps(answer))
        reply["model"] = model
        reply["choices"][0]["message"]["content"] = "hello from upstream"
        return web.json_response(reply)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/stats", stats)
    app.router.add_post("/stats/reset", reset)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    up = sub.add_parser("upstream")
    up.add_argument("--port", type=int, required=True)
    client = sub.add_parser("client")
    client.add_argument("--url", required=True)
    client.add_argument("--workers", type=int, default=4)
    client.add_argument("--pause", type=float, default=0.02)
    client.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    if args.role == "upstream":
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        asyncio.run(_upstream(args.port))
    else:
        result = asyncio.run(_client(args.url, args.workers, args.pause, args.timeout))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
