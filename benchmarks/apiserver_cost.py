"""What one API request costs the API server: kube-apiserver CPU per request, by kind of request,
on a fresh local control plane (``scale_bench.cluster``: the same CRDs, namespaces and fake
nodes), nothing else running against it.

Each step sends ``--count`` requests of one kind with ``--threads`` client threads and reads the
API server's CPU time (psutil) before and after: creates of entries and endpoints, status patches
of entries (the status the operator writes, the same again changing one field, a JSON patch, a
patch that changes nothing) and of endpoints, Events as the operator posts them, GETs, LISTs, and
creates of the Services an endpoint gets. It says which of the operator's requests are dear, and
whether a smaller patch is cheaper (it is not: a status patch costs what the whole object costs)::

    .venv/bin/python benchmarks/apiserver_cost.py
    .venv/bin/python benchmarks/apiserver_cost.py --count 2000 --json cost.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from modelyard import api
from modelyard.registry import resolve

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("scale_bench", HERE / "scale_bench.py")
assert _spec is not None and _spec.loader is not None
scale_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scale_bench)

GROUP, NAMESPACE = scale_bench.GROUP, scale_bench.NAMESPACE
MERGE, JSON_PATCH = "application/merge-patch+json", "application/json-patch+json"
WHEN = "2026-12-04T00:00:00Z"


def entry_status(i: int) -> dict[str, Any]:
    """The status the operator writes for ``scale_bench.entry_body(i)`` (its endpoint listed)."""
    found = resolve.resolve(api.ModelEntry.model_validate(scale_bench.entry_body(i)), None)
    ready = {"type": "Ready", "status": "True", "reason": "Valid", "message": "", "lastTransitionTime": WHEN,
             "observedGeneration": 1}  # fmt: skip
    return {"phase": "Valid", "reason": found.reason, "servedName": found.served_name,
            "architecture": found.architecture, "family": found.family, "category": found.category,
            "estimate": found.estimate.to_wire() if found.estimate else None,
            "requirements": found.requirements.to_wire(), "capabilities": found.capabilities.to_wire(),
            "endpoints": [{"namespace": NAMESPACE, "name": f"model-{i:04d}-ep", "ready": False}],
            "conditions": [ready], "observedGeneration": 1}  # fmt: skip


def event(i: int) -> dict[str, Any]:
    """An Event as the operator posts one for endpoint ``i`` (controllers/events.py)."""
    involved = {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint", "name": f"model-{i:04d}-ep",
                "namespace": NAMESPACE}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "model-ep."},
            "involvedObject": involved, "reason": "Ready", "message": "New -> Ready: 1/1 replicas ready",
            "type": "Normal", "source": {"component": "modelyard-operator"}, "firstTimestamp": WHEN,
            "lastTimestamp": WHEN, "count": 1}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="requests per step (and objects made)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    n = args.count
    scale_bench.build.ensure_built(lambda msg: print(msg, file=sys.stderr))
    costs: dict[str, dict[str, float]] = {}
    with scale_bench.cluster(Path(tempfile.mkdtemp(prefix="apiserver-cost-")), 10, 77) as (client, plane):

        def step(name: str, call: Callable[[Any], Any], items: Iterable[Any]) -> None:
            items = list(items)
            cpu = scale_bench.component_cpu(plane)["apiserver"]
            start = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(call, items))
            used = scale_bench.component_cpu(plane)["apiserver"] - cpu
            costs[name] = {"requests": len(items), "apiserver_cpu_s": round(used, 2),
                           "ms_per_request": round(1000 * used / len(items), 2),
                           "seconds": round(time.monotonic() - start, 2)}  # fmt: skip
            print(f"{name:<42} {costs[name]['ms_per_request']:6.2f} ms of API server CPU per request")

        entries, endpoints = f"{GROUP}/modelentries", f"{GROUP}/namespaces/{NAMESPACE}/modelendpoints"

        def post(path: str | Callable[[Any], str], body: Callable[[Any], Any]) -> Callable[[Any], Any]:
            return lambda i: client.request("POST", path(i) if callable(path) else path, body(i))

        def status(path: Callable[[int], str], body: Any, content_type: str = MERGE) -> Callable[[int], Any]:
            return lambda i: client.request(
                "PATCH", path(i), body(i) if callable(body) else body, content_type=content_type
            )

        def entry(i: int) -> str:
            return f"{entries}/model-{i:04d}/status"

        def endpoint(i: int) -> str:
            return f"{endpoints}/model-{i:04d}-ep"

        one_field = [{"op": "replace", "path": "/status/observedGeneration", "value": 3}]
        pending = {"status": {"phase": "Pending", "reason": "Creating", "observedGeneration": 1}}
        services = [obj for i in range(n) for obj in scale_bench.children(i) if obj["kind"] == "Service"]
        each, lists = range(n), range(max(1, n // 100))
        cached = {"resourceVersion": "0"}

        def written(i: int) -> dict[str, Any]:
            return {"status": entry_status(i)}

        steps: list[tuple[str, Callable[[Any], Any], Iterable[Any]]] = [
            ("create ModelEntry", post(entries, scale_bench.entry_body), each),
            ("create ModelEndpoint", post(endpoints, scale_bench.endpoint_body), each),
            ("entry status, as the operator writes it", status(entry, written), each),
            ("entry status, one field", status(entry, {"status": {"observedGeneration": 2}}), each),
            ("entry status, one field by JSON patch", status(entry, one_field, JSON_PATCH), each),
            ("entry status, no change", status(entry, {"status": {"observedGeneration": 3}}), each),
            ("endpoint status", status(lambda i: f"{endpoint(i)}/status", pending), each),
            ("post Event", post(f"/api/v1/namespaces/{NAMESPACE}/events", event), each),
            ("GET endpoint", lambda i: client.request("GET", endpoint(i)), each),
            ("LIST endpoints (cache)", lambda _i: client.request("GET", endpoints, query=cached), lists),
            ("create Service", post(lambda obj: scale_bench._path(obj), lambda obj: obj), services),
        ]  # fmt: skip
        for name, call, items in steps:
            step(name, call, items)
    print(json.dumps(costs))
    if args.json:
        args.json.write_text(json.dumps(costs) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
