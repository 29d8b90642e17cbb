"""What tests in every directory share: free ports, polling, HTTP reads, metrics, processes.

``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject.toml's pytest section), so any test or
helper module can ``import kit``.

:func:`free_port` picks a port nothing listens on. :func:`wait_for` polls until a predicate is
truthy: tests wait for a state, never sleep a guessed time and never assert how long something
took. :func:`wait_serving` waits for a started server, failing at once if its process exits.
:func:`http_get` reads a URL without raising. :func:`metric` reads one sample from a
Prometheus text page. :class:`Process` runs ``python -m modelyard ...`` as users do, with its
output in a log file, and can be killed and started again. :class:`Loop` serves aiohttp apps
from a background event loop, so tests stay synchronous. :func:`load` loads a helper module of
another test directory by its path (test directories are not packages). :func:`http_server`
serves a ``BaseHTTPRequestHandler`` on loopback, :func:`aiohttp_port` an aiohttp app on the
running loop; :func:`models_server` is an OpenAI-compatible
base URL that lists no models. :func:`install_crds` applies ``crds/`` to a cluster;
:func:`local_binaries` builds (once) the local control plane's binaries or skips saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
from aiohttp import web
from prometheus_client import parser

T = TypeVar("T")
TESTS = Path(__file__).resolve().parent
CRDS = TESTS.parent / "crds"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.2,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy; return that.

    ``timeout`` is a generous bound for a slow machine, not a claim about speed. Exceptions of the
    types in ``ignoring`` count as "not yet" (a server still starting). Fails with ``what`` and the
    last value seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except ignoring as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


def wait_serving(
    process: subprocess.Popen[Any], url: str, timeout: float, output: Callable[[], str] = str
) -> None:
    """Wait until ``GET url`` answers 200; fail at once, with ``output()``, if ``process`` exits."""

    def serving() -> bool:
        assert process.poll() is None, f"the server of {url} exited:\n{output()}"
        return http_get(url, timeout=2)[0] == 200

    wait_for(serving, timeout, f"{url} to answer 200")


def http_get(url: str, timeout: float = 5, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body); (0, "") when nothing answers."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), str(response.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


class Process:
    """``python -m modelyard ARGS`` with its output in ``log``; killable and restartable."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelyard", *self.args],
                stdout=out, stderr=subprocess.STDOUT, env=self.env,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class Loop:
    """An asyncio loop in a daemon thread; ``run(coro)`` waits for a coroutine's result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: list[web.AppRunner] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, app: web.Application, host: str = "127.0.0.1") -> str:
        async def start() -> str:
            runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(runner, host, 0)
            await site.start()
            self.runners.append(runner)
            sockets = runner.addresses
            return f"http://{host}:{sockets[0][1]}"

        return self.run(start())

    def close(self) -> None:
        async def stop() -> None:
            for runner in reversed(self.runners):
                await runner.cleanup()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(stop(), timeout=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def local_binaries(what: str = "local control plane binaries") -> Path:
    """The directory of the local control plane's binaries, built on demand and cached. When they
    cannot be built the test is skipped with the reason (``what`` names what it needed), except
    under CI, where that is a failure."""
    from modelyard.local import build

    try:
        return build.ensure_built(lambda msg: print(msg, file=sys.stderr, flush=True))
    except build.BuildError as exc:
        if os.environ.get("CI"):
            raise
        reason = f"{what} cannot be built: {exc}"
        print(reason, file=sys.stderr)
        pytest.skip(reason)


def load(relative: str, name: str) -> ModuleType:
    """The module at ``tests/<relative>`` (e.g. ``controllers/conftest.py``), loaded by its path
    as ``name``: a conftest re-exports another directory's fixtures this way."""
    spec = importlib.util.spec_from_file_location(name, TESTS / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on 127.0.0.1 from a daemon thread; yields ``http://127.0.0.1:<port>``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextlib.asynccontextmanager
async def aiohttp_port(app: web.Application) -> AsyncIterator[int]:
    """``app`` served on 127.0.0.1 from the running event loop; yields its port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


class _NoModels(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"object": "list", "data": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def models_server() -> Iterator[str]:
    """An OpenAI-compatible ``.../v1`` that answers every GET with an empty model list."""
    with http_server(_NoModels) as url:
        yield url + "/v1"


def install_crds(cluster: Any) -> None:
    """Apply ``crds/`` to ``cluster`` (a ``LocalCluster``) and wait until they are Established."""
    files = sorted(CRDS.glob("*.yaml"))
    for path in files:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *[a for p in files for a in ("-f", str(p))]
    )
