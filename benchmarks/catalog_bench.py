"""A big catalog: thousands of ModelEntries under the real operator, and its status API's model list.

The built-in catalog's entries are copied with unique names, repos and served names (the catalog
times many revisions) and created on a fresh local control plane (``scale_bench.cluster``) while
``modelyard operator --no-webhook --status-port P`` runs. Two steps, in one run:

1. **small**: ``--small`` entries; once all are ``Valid``, the model list is measured.
2. **big**: the rest up to ``--entries``; the time from the first create to all ``Valid``, then
   the model list again.

The model list is ``GET /api/v1/registry/models`` (its default page of 100) and ``?limit=1000``,
``--requests`` sequential requests each after a warm-up, from this process (the operator is a
subprocess). psutil samples the operator's RSS every second. The API server's requests are
counted per entry. Prints a table and one JSON object (also to ``--json``).

    .venv/bin/python benchmarks/catalog_bench.py --entries 5000
    .venv/bin/python benchmarks/catalog_bench.py --entries 200 --small 50 --requests 100   # quick
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from modelyard.local import build
from modelyard.registry import catalog, manifests

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("scale_bench", HERE / "scale_bench.py")
assert _spec is not None and _spec.loader is not None
scale_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scale_bench)

GROUP = scale_bench.GROUP


def entries(count: int) -> list[dict[str, Any]]:
    """``count`` copies of the built-in catalog's entries, each with its own name, repo and served name."""
    base = manifests.load_entries(catalog.BUILTIN_CATALOG)
    made = []
    for i in range(count):
        entry = base[i % len(base)].to_wire()
        spec = dict(entry["spec"])
        repo = spec["source"].get("repo") or entry["metadata"]["name"]
        spec["source"] = {**spec["source"], "repo": f"{repo}-r{i}"}
        spec["servedName"] = f"{repo.rsplit('/', 1)[-1].lower()}-r{i}"
        made.append({"apiVersion": entry["apiVersion"], "kind": "ModelEntry",
                     "metadata": {"name": f"{entry['metadata']['name']}-r{i}"}, "spec": spec})  # fmt: skip
    return made


def _valid(entry: dict[str, Any]) -> bool:
    return (entry.get("status") or {}).get("phase") == "Valid"


def list_latency(base: str, requests: int) -> dict[str, Any]:
    """p50 / p99 / max in ms of the model list, default page and ``limit=1000``."""
    figures: dict[str, Any] = {}
    for name, query in (("page", ""), ("limit1000", "?limit=1000")):
        url = f"{base}/api/v1/registry/models{query}"
        for _ in range(10):  # warm-up: the registry is built lazily after a change
            urllib.request.urlopen(url, timeout=60).read()
        samples = []
        for _ in range(requests):
            start = time.perf_counter()
            with urllib.request.urlopen(url, timeout=60) as response:
                body = json.loads(response.read())
            samples.append((time.perf_counter() - start) * 1000)
        cuts = statistics.quantiles(samples, n=100, method="inclusive")
        total = body.get("total", body.get("pagination", {}).get("total"))
        figures[name] = {"p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2),
                         "max_ms": round(max(samples), 2), "total": total}  # fmt: skip
    return figures


def _cache_version(base: str) -> int:
    with urllib.request.urlopen(f"{base}/api/v1/healthz", timeout=30) as response:
        return int(json.loads(response.read())["data"]["version"])


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    made = entries(args.entries)
    cidr = 30 + os.getpid() % 150
    with scale_bench.cluster(tmp / "plane", 0, cidr) as (client, plane):
        state, status_port = plane.state_dir, scale_bench._free_port()
        command = [sys.executable, "-m", "modelyard", "operator", "--kubeconfig", str(state / "kubeconfig"),
                   "--namespace", "modelyard-system", "--metrics-port", str(scale_bench._free_port()),
                   "--status-port", str(status_port), "--webhook-port", str(scale_bench._free_port()),
                   "--no-webhook"]  # fmt: skip
        log = (state / "operator.log").open("w")
        env = {**os.environ, "KUBECONFIG": str(state / "kubeconfig")}
        operator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{status_port}"
        try:
            lease = "/apis/coordination.k8s.io/v1/namespaces/modelyard-system/leases/modelyard-operator"
            scale_bench._wait(lambda: client.get(lease), 120, "the operator's Lease")
            scale_bench._wait(
                lambda: urllib.request.urlopen(f"{base}/api/v1/healthz", timeout=5), 60, "status API"
            )
            sampler = scale_bench.Sampler(operator.pid)
            rss_idle = sampler.process.memory_info().rss
            sampler.start()
            out: dict[str, Any] = {"rss_idle_mib": round(rss_idle / 2**20, 1)}
            steps = (("small", made[: args.small]), ("big", made[args.small :]))
            present = 0
            for name, batch in steps:
                before = scale_bench.request_counts(client)
                start = time.monotonic()
                created = scale_bench.create_all(client, batch, args.threads)
                present += len(batch)
                path = f"{GROUP}/modelentries"
                valid_s, timeline = scale_bench._converge(client, path, _valid, present, start, args.timeout)
                requests = scale_bench._delta(scale_bench.request_counts(client), before)
                out[name] = {
                    "entries": present,
                    "create_s": round(created, 1),
                    "all_valid_s": valid_s,
                    "valid": timeline[-1][1] if timeline else 0,
                    "api_requests": requests,
                    "api_requests_per_entry": round(sum(requests.values()) / max(1, len(batch)), 2),
                    "rss_mib": round(sampler.process.memory_info().rss / 2**20, 1),
                }
                time.sleep(args.settle)
                version = _cache_version(base)
                cpu = sampler.cpu()
                out[name]["model_list"] = list_latency(base, args.requests)
                # churn: cache changes and operator CPU while the list was measured (nothing changes)
                out[name]["cache_changes_while_measuring"] = _cache_version(base) - version
                out[name]["operator_cpu_s_while_measuring"] = round(sampler.cpu() - cpu, 2)
            sampler.halt.set()
            sampler.join()
            out["rss_peak_mib"] = round(max(sampler.rss) / 2**20, 1)
            out["rss_end_mib"] = round(sampler.process.memory_info().rss / 2**20, 1)
            return out
        finally:
            operator.terminate()
            try:
                operator.wait(30)
            except subprocess.TimeoutExpired:
                operator.kill()
            log.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=5000, help="ModelEntries in all")
    parser.add_argument("--small", type=int, default=100, help="entries of the first, small step")
    parser.add_argument("--requests", type=int, default=300, help="model-list requests per measurement")
    parser.add_argument("--threads", type=int, default=8, help="client threads creating objects")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for all Valid, per step")
    parser.add_argument("--settle", type=float, default=5, help="seconds after all Valid before the list")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    build.ensure_built(lambda msg: print(msg, file=sys.stderr))
    summary: dict[str, Any] = {"entries": args.entries, "load_avg_start": os.getloadavg()}
    summary.update(run(args, Path(tempfile.mkdtemp(prefix="catalog-bench-"))))
    summary["load_avg_end"] = os.getloadavg()
    for step in ("small", "big"):
        s = summary[step]
        lists = ", ".join(f"{k} p50 {v['p50_ms']} / p99 {v['p99_ms']} ms" for k, v in s["model_list"].items())
        print(f"{s['entries']:>5} entries: all Valid {s['all_valid_s']} s ({s['valid']}), "
              f"{s['api_requests_per_entry']} API requests per entry, RSS {s['rss_mib']} MiB")  # fmt: skip
        print(f"      model list: {lists}; meanwhile {s['cache_changes_while_measuring']} cache changes, "
              f"operator CPU {s['operator_cpu_s_while_measuring']} s")  # fmt: skip
    print(f"operator RSS idle {summary['rss_idle_mib']} MiB, peak {summary['rss_peak_mib']} MiB, "
          f"end {summary['rss_end_mib']} MiB")  # fmt: skip
    text = json.dumps(summary)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if summary["big"]["all_valid_s"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
