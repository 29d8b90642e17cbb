"""What the fault tests share: the operator and gateway as real processes, client traffic, metrics.

:class:`Gateway` is a ``modelyard gateway`` :class:`kit.Process` that a test can SIGKILL and
start again. :class:`Traffic` drives the gateway from a background event loop with the kind of
load a fault should not disturb: open-loop non-streaming requests at a fixed rate (each one's
outcome kept) and long streams whose every event is recorded, so a test can say which streams
were cut and how they ended. :class:`Upstream` is an OpenAI-compatible server that answers, or
accepts and never answers; the manifest and readiness helpers describe the tiny Llama endpoint
every fault test leans on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from kit import Process, free_port, http_get

T = TypeVar("T")
GROUP_PATH = "/apis/modelyard.io/v1alpha1"
NAMESPACE = "faults"
ENTRY = "fault-tiny"
SERVED = "tiny-chat"
ENDPOINT = "chat"


class Gateway(Process):
    """``modelyard gateway`` against a cluster, on a port of its own, authentication off."""

    def __init__(self, kubeconfig: Path, log: Path, *flags: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            ["gateway", "--kubeconfig", str(kubeconfig), "--host", "127.0.0.1", "--port", str(self.port),
             "--no-auth", *flags],
            log,
            {"KUBECONFIG": str(kubeconfig)},
        )  # fmt: skip

    def models(self) -> list[str]:
        status, text = http_get(f"{self.url}/v1/models")
        return [m["id"] for m in json.loads(text)["data"]] if status == 200 else []

    def metrics(self) -> str:
        return http_get(f"{self.url}/metrics")[1]


def endpoint_manifest(replicas: int = 2, mark: str = "v1") -> str:
    """The tiny Llama's ModelEndpoint; ``mark`` is an env value, changed to make the pods roll."""
    return f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: {ENDPOINT}, namespace: {NAMESPACE}}}
spec:
  model: {ENTRY}
  replicas: {replicas}
  resources: {{gpus: 0, cpu: "1", memory: 1Gi}}
  env:
    - {{name: OMP_NUM_THREADS, value: "1"}}
    - {{name: FAULT_MARK, value: "{mark}"}}
"""


def ready(cluster: Any, name: str = ENDPOINT, replicas: int = 2) -> dict[str, Any] | None:
    """The endpoint when it is Ready with every replica and its latest spec observed."""
    body = cluster.kube.get(f"{GROUP_PATH}/namespaces/{NAMESPACE}/modelendpoints/{name}") or {}
    status = body.get("status") or {}
    done = (
        status.get("phase") == "Ready"
        and status.get("readyReplicas") == replicas
        and status.get("observedGeneration") == body["metadata"]["generation"]
    )
    return body if done else None


def mark(template: dict[str, Any]) -> str | None:
    """The ``FAULT_MARK`` env value of a pod template (or a pod)."""
    env = template["spec"]["containers"][0].get("env") or []
    return next((e.get("value") for e in env if e["name"] == "FAULT_MARK"), None)


def children(cluster: Any, path: str) -> list[dict[str, Any]]:
    """The endpoint's objects under ``path`` (Deployments, Services, ReplicaSets, pods), by label."""
    items: list[dict[str, Any]] = cluster.kube.get(path, labelSelector=f"modelyard.io/endpoint={ENDPOINT}")[
        "items"
    ]
    return items


def rolling(cluster: Any, to: str) -> dict[str, Any] | None:
    """The Deployment's status once its rollout to the mark ``to`` has begun (a new pod exists)."""
    found = cluster.kube.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{ENDPOINT}")
    status: dict[str, Any] = found["status"]
    begun = (
        mark(found["spec"]["template"]) == to
        and status.get("observedGeneration") == found["metadata"]["generation"]
        and status.get("updatedReplicas", 0) >= 1
    )
    return status if begun else None


def settled(cluster: Any, to: str, replicas: int = 2) -> list[dict[str, Any]] | None:
    """The endpoint's pods once only pods with the mark ``to`` are left, as many as ``replicas``."""
    pods = children(cluster, f"/api/v1/namespaces/{NAMESPACE}/pods")
    current = all(mark(p) == to and not p["metadata"].get("deletionTimestamp") for p in pods)
    return pods if len(pods) == replicas and current else None


def pod_ips(cluster: Any) -> dict[str, str]:
    """Ready pods of the endpoint: name -> pod IP."""
    pods = cluster.kube.get(
        f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=f"modelyard.io/endpoint={ENDPOINT}"
    )["items"]
    found = {}
    for pod in pods:
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}
        if conditions.get("Ready") == "True" and not pod["metadata"].get("deletionTimestamp"):
            found[pod["metadata"]["name"]] = pod["status"]["podIP"]
    return found


class Upstream:
    """An OpenAI-compatible server on 127.0.0.1: answers ``GET /v1/models`` and, unless ``hang``,
    every POST with a fixed chat completion; with ``hang`` it accepts POSTs and never answers."""

    def __init__(self, hang: bool = False) -> None:
        self.posts = 0
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._json({"object": "list", "data": [{"id": "remote-model", "object": "model"}]})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts += 1
                if hang:
                    outer.release.wait(600)  # hold the connection, say nothing
                    return
                message = {"role": "assistant", "content": "hello from the upstream"}
                self._json({
                    "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "remote-model",
                    "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                })  # fmt: skip

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def upstream_manifest(name: str, served: str, base_url: str, fallback: str | None = None) -> str:
    """An upstream ModelEntry ``name`` and its ModelEndpoint ``name`` in the test namespace."""
    extra = f", fallback: [{fallback}]" if fallback else ""
    return f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {name}}}
spec:
  source: {{provider: upstream}}
  servedName: {served}
  category: text-llm
  runtime: {{engine: upstream}}
  upstream: {{baseUrl: "{base_url}", model: remote-model}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: {name}, namespace: {NAMESPACE}}}
spec: {{model: {name}{extra}}}
"""


def chat_body(model: str, max_tokens: int, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }


@dataclasses.dataclass
class Outcome:
    """One non-streaming request: status (0 = the connection failed) and seconds from its slot."""

    status: int
    seconds: float
    error: str = ""


@dataclasses.dataclass
class Stream:
    """One streamed answer as the client saw it."""

    index: int
    status: int = 0
    events: list[str] = dataclasses.field(default_factory=list)
    content_chunks: int = 0
    keepalives: int = 0
    first_content_at: float | None = None
    finished_at: float | None = None
    failure: str = ""

    @property
    def error(self) -> dict[str, Any] | None:
        """The gateway's SSE error event, when the stream ended with one."""
        for event in self.events:
            if event.startswith('{"error"'):
                found: dict[str, Any] = json.loads(event)["error"]
                return found
        return None

    @property
    def done(self) -> bool:
        return bool(self.events) and self.events[-1] == "[DONE]"

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """The JSON chunks, in order (not the error event, not ``[DONE]``)."""
        found = [json.loads(e) for e in self.events if e.startswith("{")]
        return [c for c in found if "error" not in c]

    @property
    def text(self) -> str:
        return "".join(
            (c.get("delta") or {}).get("content") or ""
            for chunk in self.chunks
            for c in chunk.get("choices") or []
        )

    @property
    def usage(self) -> dict[str, Any] | None:
        found = [c["usage"] for c in self.chunks if c.get("usage")]
        return found[-1] if found else None

    @property
    def finish_reason(self) -> str | None:
        for event in reversed(self.events):
            if event.startswith("{") and '"choices"' in event:
                for choice in json.loads(event).get("choices") or []:
                    if choice.get("finish_reason"):
                        return str(choice["finish_reason"])
        return None


class Traffic:
    """Client load on a background event loop; the test thread stays free to cause faults."""

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/v1/chat/completions"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.session: aiohttp.ClientSession = self._run(self._session())
        self.outcomes: list[Outcome] = []
        self.streams: list[Stream] = []
        self._tasks: list[asyncio.Future[Any]] = []

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=180, sock_connect=10)
        return aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0))

    def steady(self, body: dict[str, Any], rate: float, duration: float) -> None:
        """Send ``body`` ``rate`` times a second for ``duration`` seconds (open loop)."""
        self._tasks.append(asyncio.run_coroutine_threadsafe(self._steady(body, rate, duration), self.loop))

    async def _steady(self, body: dict[str, Any], rate: float, duration: float) -> None:
        payload = json.dumps(body).encode()
        start = time.monotonic()
        sends = []
        for i in range(int(rate * duration)):
            slot = start + i / rate
            await asyncio.sleep(max(0.0, slot - time.monotonic()))
            sends.append(asyncio.ensure_future(self._one(payload, slot)))
        await asyncio.gather(*sends)

    async def _one(self, payload: bytes, slot: float) -> None:
        try:
            async with self.session.post(
                self.url, data=payload, headers={"Content-Type": "application/json"}
            ) as response:
                text = await response.text()
                error = "" if response.status == 200 else text[:300]
                self.outcomes.append(Outcome(response.status, time.monotonic() - slot, error))
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.outcomes.append(Outcome(0, time.monotonic() - slot, repr(exc)))

    def stream(self, body: dict[str, Any]) -> Stream:
        """Open one stream; returns at once, the record fills in as events arrive."""
        record = Stream(len(self.streams))
        self.streams.append(record)
        self._tasks.append(asyncio.run_coroutine_threadsafe(self._stream(body, record), self.loop))
        return record

    async def _stream(self, body: dict[str, Any], record: Stream) -> None:
        try:
            async with self.session.post(self.url, json=body) as response:
                record.status = response.status
                async for raw in response.content:
                    line = raw.decode().strip()
                    record.keepalives += line.startswith(": keepalive")
                    if not line.startswith("data: "):
                        continue  # blank separators and comments
                    data = line[6:]
                    record.events.append(data)
                    if '"content"' in data and record.first_content_at is None:
                        record.first_content_at = time.monotonic()
                    record.content_chunks += '"content"' in data
        except (aiohttp.ClientError, TimeoutError) as exc:
            record.failure = repr(exc)
        record.finished_at = time.monotonic()

    def wait(self, timeout: float) -> None:
        """Until every request and stream started so far has ended."""
        deadline = time.monotonic() + timeout
        for task in self._tasks:
            task.result(max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        try:
            self._run(self.session.close(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
