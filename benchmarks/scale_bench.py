"""Operator scale: N ModelEntries and N ModelEndpoints until every endpoint is Ready, against the
limit of the same cluster without the operator, in one run.

Each phase gets a fresh local control plane of its own (``modelyard.local.controlplane``; the
node agent runs as its own process with ``--fake`` nodes of 100 GPUs each, so pods run no process
and are only marked Running and Ready) and the generated CRDs:

1. **limit** (no operator): a plain client (``--threads`` threads over
   :class:`modelyard.local.kube.Kube`) creates the N entries and N endpoints, then the N Deployments
   and N Services that ``modelyard.builders`` builds for them (owner references left out, as there
   is no owner UID to point at), and waits until every Deployment has its replica ready.
2. **operator**: ``modelyard operator`` (``--no-webhook`` unless ``--webhook``; Lease on) runs as a
   subprocess; the same client creates the same entries and endpoints at full speed, and the
   bench waits until every endpoint's ``status.phase`` is ``Ready``. psutil samples the operator's
   RSS and CPU time every second.

Both phases count Ready from a watch started before their first create (Deployments with a
ready replica; endpoints with ``status.phase: Ready``), so the end is seen when it happens and
counting costs the API server an event per change (``--poll``: a LIST every second, the method
before 2026-12-04, which serialised the whole list each time on the CPU the phases share).
Both phases count the API server's requests (``apiserver_request_total`` before and after).
Prints a table and one JSON object (also to ``--json``); exit status 1 if the operator did not
converge within ``--timeout``.

    .venv/bin/python benchmarks/scale_bench.py --entries 1000
    .venv/bin/python benchmarks/scale_bench.py --entries 5 --timeout 120    # a quick check
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

from modelyard import api
from modelyard.builders import deployment, service, settings
from modelyard.local import build, controlplane, kube

ROOT = Path(__file__).resolve().parents[1]
GROUP = "/apis/modelyard.io/v1alpha1"
NAMESPACE = "scale"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(kube.KubeError, OSError):
            if value := predicate():
                return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextlib.contextmanager
def cluster(state_dir: Path, count: int, cidr: int) -> Iterator[tuple[kube.Kube, controlplane.ControlPlane]]:
    """A fresh control plane with fake nodes enough for ``count`` pods, CRDs and namespaces."""
    plane = controlplane.ControlPlane(state_dir)
    nodes = [f"fake-{i}:100:NVIDIA-H100-80GB-HBM3" for i in range(math.ceil(count / 100) + 1)]
    agent = [arg for n in nodes for arg in ("--node", n)] + ["--fake", "--pod-cidr", f"127.{cidr}.0.0/16"]
    try:
        plane.up(agent_args=agent, timeout=180, log=lambda msg: print(msg, file=sys.stderr))
        client = kube.Kube(plane.kubeconfig, pool_size=64)
        kubectl = str(build.ensure_built(lambda _m: None) / "kubectl")
        subprocess.run([kubectl, "--kubeconfig", str(plane.kubeconfig), "apply", "-f", str(ROOT / "crds")],
                       check=True, capture_output=True)  # fmt: skip
        for plural in ("modelentries", "modelendpoints"):
            _wait(lambda p=plural: client.request("GET", f"{GROUP}/{p}", query={"limit": 1}), 60, plural)
        probe = entry_body(99999)  # the first write of a new kind is slow: not part of the figures
        client.request("POST", _path(probe), probe)
        client.request("DELETE", f"{_path(probe)}/{probe['metadata']['name']}")
        for ns in (NAMESPACE, "modelyard-system"):
            client.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": ns}})  # fmt: skip
        _wait(lambda: client.get(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"), 60, "the SA")
        _wait(lambda: len(client.request("GET", "/api/v1/nodes")["items"]) == len(nodes), 60, "nodes")
        yield client, plane
    finally:
        plane.down(grace=10, log=lambda _m: None)


def entry_body(i: int) -> dict[str, Any]:
    name = f"model-{i:04d}"
    return {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEntry", "metadata": {"name": name},
            "spec": {"source": {"provider": "huggingface", "repo": f"bench/{name}"}, "servedName": name,
                     "architecture": "LlamaForCausalLM", "runtime": {"engine": "vllm"}}}  # fmt: skip


def endpoint_body(i: int) -> dict[str, Any]:
    name = f"model-{i:04d}"
    return {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint",
            "metadata": {"name": f"{name}-ep", "namespace": NAMESPACE},
            "spec": {"model": name, "replicas": 1,
                     "resources": {"gpus": 1, "gpuType": "NVIDIA-H100-80GB-HBM3", "cpu": "10m",
                                   "memory": "64Mi"}}}  # fmt: skip


def children(i: int) -> list[dict[str, Any]]:
    """The Deployment and Service the operator would apply for endpoint ``i``."""
    entry, endpoint = (
        api.ModelEntry.model_validate(entry_body(i)),
        api.ModelEndpoint.model_validate(endpoint_body(i)),
    )
    cfg = settings.Settings()
    built = [deployment.build_deployment(endpoint, entry, cfg, owner_uid="none"),
             service.build_service(endpoint, cfg, owner_uid="none", model=entry.name)]  # fmt: skip
    for obj in built:
        obj["metadata"].pop("ownerReferences", None)
    return built


def _path(obj: dict[str, Any]) -> str:
    plural = {"ModelEntry": "modelentries", "ModelEndpoint": "modelendpoints", "Deployment": "deployments",
              "Service": "services"}[obj["kind"]]  # fmt: skip
    prefix = {"v1": "/api/v1", "apps/v1": "/apis/apps/v1"}.get(obj["apiVersion"], GROUP)
    ns = obj["metadata"].get("namespace")
    return f"{prefix}/namespaces/{ns}/{plural}" if ns else f"{prefix}/{plural}"


def create_all(client: kube.Kube, objects: list[dict[str, Any]], threads: int) -> float:
    """POST every object with ``threads`` workers; returns the seconds it took."""
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for done in pool.map(lambda o: client.request("POST", _path(o), o), objects):
            assert done["metadata"]["name"]
    return time.monotonic() - start


def component_cpu(plane: controlplane.ControlPlane) -> dict[str, float]:
    """CPU seconds used so far by each control-plane process (and the node agent)."""
    used = {}
    for name, pid in plane.pids().items():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            used[name] = times.user + times.system
    return used


def request_counts(client: kube.Kube, by_resource: bool = False) -> dict[str, float]:
    """The API server's apiserver_request_total summed by verb (or by verb and resource)."""
    text = client._pool.request("GET", client.server + "/metrics").data.decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "apiserver_request":
            for sample in family.samples:
                if sample.name == "apiserver_request_total":
                    verb = sample.labels.get("verb", "?")
                    if by_resource:
                        sub = sample.labels.get("subresource")
                        verb = f"{verb} {sample.labels.get('resource', '?')}{'/' + sub if sub else ''}"
                    counts[verb] = counts.get(verb, 0) + sample.value
    return counts


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {
        k: round(after[k] - before.get(k, 0), 1) for k in sorted(after) if after[k] - before.get(k, 0) > 0
    }


def _count_ready(client: kube.Kube, path: str, ready: Callable[[dict[str, Any]], bool]) -> int:
    items = client.request("GET", path, query={"resourceVersion": "0"}, timeout=60)["items"]
    return sum(1 for item in items if ready(item))


def _converge(client: kube.Kube, path: str, ready: Callable[[dict[str, Any]], bool], n: int,
              start: float, timeout: float) -> tuple[float | None, list[tuple[float, int]]]:  # fmt: skip
    """Poll until ``n`` objects are ready: (seconds since ``start`` or None, the timeline)."""
    timeline: list[tuple[float, int]] = []
    while time.monotonic() - start < timeout:
        with contextlib.suppress(kube.KubeError, OSError):
            count = _count_ready(client, path, ready)
            timeline.append((round(time.monotonic() - start, 1), count))
            if count >= n:
                return timeline[-1][0], timeline
        time.sleep(1.0)
    return None, timeline


class Watcher(threading.Thread):
    """Counts the objects of ``path`` that are ``ready`` from a watch (listed once, then watched,
    resumed from the last version seen): each change is seen as it happens, at the cost of one
    event, where a poll serialised the whole list every second (on the API server's CPU, which
    the phases measure) and saw the end up to a second late."""

    def __init__(self, client: kube.Kube, path: str, ready: Callable[[dict[str, Any]], bool]) -> None:
        super().__init__(daemon=True)
        self.client, self.path, self.ready = client, path, ready
        self.names: set[str] = set()
        self.changed, self.halt = threading.Condition(), threading.Event()
        listed = client.request("GET", path, timeout=60)
        self.version = listed["metadata"]["resourceVersion"]
        for item in listed["items"]:
            self._see("ADDED", item)

    def _see(self, kind: str, obj: dict[str, Any]) -> None:
        name = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        with self.changed:
            if kind != "DELETED" and self.ready(obj):
                self.names.add(name)
            else:
                self.names.discard(name)
            self.changed.notify_all()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                for event in self.client.watch(self.path, self.version, timeout=30):
                    obj = event["object"]
                    if event["type"] == "ERROR":  # 410: the version is gone; list again
                        listed = self.client.request("GET", self.path, timeout=60)
                        with self.changed:
                            self.names.clear()
                        for item in listed["items"]:
                            self._see("ADDED", item)
                        self.version = listed["metadata"]["resourceVersion"]
                        break
                    self.version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._see(event["type"], obj)
            except Exception:  # the server away (or stopped at the phase's end): watch again
                if self.halt.is_set():
                    return
                time.sleep(0.5)

    def converge(self, n: int, start: float, timeout: float) -> tuple[float | None, list[tuple[float, int]]]:
        """Wait until ``n`` are ready: (seconds since ``start`` or None, a timeline of the count,
        a point per second and one at the end)."""
        timeline: list[tuple[float, int]] = []
        with self.changed:
            while True:
                now = time.monotonic() - start
                count = len(self.names)
                if not timeline or now - timeline[-1][0] >= 1.0 or count >= n:
                    timeline.append((round(now, 1), count))
                if count >= n:
                    return timeline[-1][0], timeline
                if now >= timeout:
                    return None, timeline
                self.changed.wait(min(1.0, timeout - now))


def converge(client: kube.Kube, path: str, ready: Callable[[dict[str, Any]], bool], n: int,
             start: float, timeout: float, poll: bool, watcher: Watcher | None
             ) -> tuple[float | None, list[tuple[float, int]]]:  # fmt: skip
    if poll or watcher is None:
        return _converge(client, path, ready, n, start, timeout)
    try:
        return watcher.converge(n, start, timeout)
    finally:
        watcher.halt.set()


def _available(d: dict[str, Any]) -> bool:
    return int((d.get("status") or {}).get("readyReplicas") or 0) >= 1


def limit_phase(client: kube.Kube, plane: controlplane.ControlPlane, n: int, threads: int, timeout: float,
                poll: bool = False) -> dict[str, Any]:  # fmt: skip
    deployments = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    watcher = None if poll else Watcher(client, deployments, _available)
    if watcher is not None:
        watcher.start()
    before, cpu_before = request_counts(client), component_cpu(plane)
    by_resource = request_counts(client, by_resource=True)
    start = time.monotonic()
    crs = create_all(
        client, [entry_body(i) for i in range(n)] + [endpoint_body(i) for i in range(n)], threads
    )
    kids = [obj for i in range(n) for obj in children(i)]
    kids_start = time.monotonic()
    kids_s = create_all(client, kids, threads)
    ready_s, timeline = converge(client, deployments, _available, n, kids_start, timeout, poll, watcher)
    total = None if ready_s is None else time.monotonic() - start
    return {"cr_create_s": round(crs, 2), "cr_create_per_s": round(2 * n / crs, 1),
            "children_create_s": round(kids_s, 2), "children_create_per_s": round(2 * n / kids_s, 1),
            "children_ready_s": ready_s, "total_s": None if total is None else round(total, 1),
            "api_requests": _delta(request_counts(client), before),
            "api_requests_by_resource": _delta(request_counts(client, by_resource=True), by_resource),
            "cluster_cpu_s": _delta(component_cpu(plane), cpu_before), "timeline": timeline}  # fmt: skip


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process, self.rss, self.halt = psutil.Process(pid), [0], threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0):
            with contextlib.suppress(psutil.Error):
                self.rss.append(self.process.memory_info().rss)

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)


def _phase_ready(e: dict[str, Any]) -> bool:
    return (e.get("status") or {}).get("phase") == "Ready"


def operator_phase(client: kube.Kube, plane: controlplane.ControlPlane, args: argparse.Namespace
                   ) -> dict[str, Any]:  # fmt: skip
    state = plane.state_dir
    n, metrics_port = args.entries, _free_port()
    command = [sys.executable, "-m", "modelyard", "operator", "--kubeconfig", str(state / "kubeconfig"),
               "--namespace", "modelyard-system", "--metrics-port", str(metrics_port),
               "--webhook-port", str(_free_port())] + ([] if args.webhook else ["--no-webhook"])  # fmt: skip
    log = (state / "operator.log").open("w")
    # KUBECONFIG too: older operator builds' kopf login read only that (not --kubeconfig)
    env = {**os.environ, "KUBECONFIG": str(state / "kubeconfig")}
    operator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        lease = "/apis/coordination.k8s.io/v1/namespaces/modelyard-system/leases/modelyard-operator"
        _wait(lambda: client.get(lease), 120, "the operator's Lease")
        if args.webhook:
            hooks = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
            _wait(lambda: client.request("GET", hooks)["items"], 60, "the webhook registration")
        time.sleep(2)
        spy = None
        if args.py_spy:  # a profile of the operator while it converges (collapsed stacks)
            spy = subprocess.Popen([args.py_spy, "record", "--pid", str(operator.pid), "--format", "raw",
                                    "--rate", "50", "-o", str(args.py_spy_out)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        endpoints = f"{GROUP}/namespaces/{NAMESPACE}/modelendpoints"
        watcher = None if args.poll else Watcher(client, endpoints, _phase_ready)
        if watcher is not None:
            watcher.start()
        sampler = Sampler(operator.pid)
        cpu_before, rss_idle = sampler.cpu(), sampler.process.memory_info().rss
        sampler.start()
        before, cluster_before = request_counts(client), component_cpu(plane)
        by_resource = request_counts(client, by_resource=True)
        start = time.monotonic()
        crs = create_all(client, [entry_body(i) for i in range(n)] + [endpoint_body(i) for i in range(n)],
                         args.threads)  # fmt: skip
        ready_s, timeline = converge(
            client, endpoints, _phase_ready, n, start, args.timeout, args.poll, watcher
        )
        cpu_converged = sampler.cpu() - cpu_before
        cluster_cpu = _delta(component_cpu(plane), cluster_before)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        entries_valid = _count_ready(client, f"{GROUP}/modelentries",
                                     lambda e: (e.get("status") or {}).get("phase") == "Valid")  # fmt: skip
        time.sleep(args.settle)
        sampler.halt.set()
        sampler.join()
        with urllib_open(f"http://127.0.0.1:{metrics_port}/metrics") as text:
            families = [f for f in text_string_to_metric_families(text) if f.name == "modelyard_reconciles"]
        reconciles = {
            f"{s.labels['kind']}/{s.labels['result']}": int(s.value)
            for f in families
            for s in f.samples
            if s.name == "modelyard_reconciles_total"
        }
        return {
            "webhook": args.webhook,
            "cr_create_s": round(crs, 2),
            "cr_create_per_s": round(2 * n / crs, 1),
            "ready_s": ready_s,
            "ready_count": timeline[-1][1] if timeline else 0,
            "entries_valid": entries_valid,
            "rss_idle_mib": round(rss_idle / 2**20, 1),
            "rss_peak_mib": round(max(sampler.rss) / 2**20, 1),
            "rss_end_mib": round(sampler.process.memory_info().rss / 2**20, 1),
            "cpu_s_to_ready": round(cpu_converged, 1),
            "cpu_s_total": round(sampler.cpu() - cpu_before, 1),
            "settle_s": args.settle,
            "reconciles": reconciles,
            "cluster_cpu_s_to_ready": cluster_cpu,
            "api_requests": _delta(request_counts(client), before),
            "api_requests_by_resource": _delta(request_counts(client, by_resource=True), by_resource),
            "timeline": timeline,
        }
    finally:
        operator.terminate()
        try:
            operator.wait(30)
        except subprocess.TimeoutExpired:
            operator.kill()
        log.close()


@contextlib.contextmanager
def urllib_open(url: str) -> Iterator[str]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        yield response.read().decode()


def report(summary: dict[str, Any]) -> None:
    n, lim, op = summary["entries"], summary.get("limit"), summary["operator"]
    hook = "on" if op["webhook"] else "off"
    print(f"\n{n} ModelEntries + {n} ModelEndpoints ({summary['threads']} client threads, webhook {hook})")
    if lim:
        print(f"limit    CRs created {lim['cr_create_per_s']:>7} /s; children created "
              f"{lim['children_create_per_s']} /s, all Ready {lim['children_ready_s']} s after their first "
              f"create; total {lim['total_s']} s")  # fmt: skip
    print(f"operator CRs created {op['cr_create_per_s']:>7} /s; all endpoints Ready {op['ready_s']} s "
          f"({op['ready_count']}/{n}), entries Valid {op['entries_valid']}/{n}")  # fmt: skip
    print(f"operator RSS idle {op['rss_idle_mib']} MiB, peak {op['rss_peak_mib']} MiB, "
          f"end {op['rss_end_mib']} MiB; CPU {op['cpu_s_to_ready']} s to Ready, "
          f"{op['cpu_s_total']} s incl. {op['settle_s']} s settle")  # fmt: skip
    print(f"operator reconciles {op['reconciles']}")
    for name, phase in (("limit", lim), ("operator", op)):
        if phase:
            print(f"API requests ({name}): {phase['api_requests']}")
            cpu = phase.get("cluster_cpu_s") or phase.get("cluster_cpu_s_to_ready")
            print(f"control plane CPU seconds ({name}): {cpu}")
    if summary.get("ratio_ready_over_limit") is not None:
        print(f"ratio operator Ready / limit total: {summary['ratio_ready_over_limit']:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1000, help="entries, and endpoints (one each)")
    parser.add_argument("--threads", type=int, default=8, help="client threads creating objects")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for Ready, per phase")
    parser.add_argument("--settle", type=float, default=10, help="seconds after Ready before the end RSS")
    parser.add_argument("--webhook", action="store_true", help="run the operator with its admission webhook")
    parser.add_argument("--skip-limit", action="store_true", help="only the operator phase")
    parser.add_argument(
        "--poll",
        action="store_true",
        help="count Ready by listing every second (the method before 2026-12-04) instead of watching",
    )
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--py-spy", help="path to py-spy: profile the operator until all are Ready")
    parser.add_argument("--py-spy-out", type=Path, default=Path("operator-profile.txt"), help="its output")
    args = parser.parse_args()
    build.ensure_built(lambda msg: print(msg, file=sys.stderr))
    tmp = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    summary: dict[str, Any] = {"entries": args.entries, "threads": args.threads, "cpus": os.cpu_count(),
                               "load_avg_start": os.getloadavg()}  # fmt: skip
    summary["count"] = "poll" if args.poll else "watch"
    cidr = 30 + os.getpid() % 150
    if not args.skip_limit:
        with cluster(tmp / "limit", args.entries, cidr) as (client, plane):
            summary["limit"] = limit_phase(client, plane, args.entries, args.threads, args.timeout, args.poll)
    with cluster(tmp / "operator", args.entries, cidr + 1) as (client, plane):
        summary["operator"] = operator_phase(client, plane, args)
    limit_total, ready = (summary.get("limit") or {}).get("total_s"), summary["operator"]["ready_s"]
    summary["ratio_ready_over_limit"] = ready / limit_total if ready and limit_total else None
    summary["load_avg_end"] = os.getloadavg()
    report(summary)
    text = json.dumps(summary)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if ready is not None else 1


if __name__ == "__main__":
    sys.exit(main())
