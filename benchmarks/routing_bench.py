"""Gateway routing cost: a route table of 1000 served names against one of a single name.

Pure CPU, no network, one process. For each table size (``--models``, default 1000, and 1),
with ``--endpoints`` weighted endpoints per name and ``--pods`` ready pods per endpoint:

* **decision**: what the proxy does per request before it sends anything:
  ``table.get(model)``, ``WeightedLeastBusy.choose`` (smooth weighted round-robin over the
  endpoints, then the least-busy pod), ``started`` and ``finished`` on the target. Served names
  are drawn at random (seeded) from the table, so the balancer's per-name state is as large as
  it gets. ``--decisions`` timed one by one (p50/p99, ``perf_counter_ns``, which adds ~0.1 µs)
  and the mean of an untimed loop.
* **rebuild**: what one change costs before the new table is live. ``build_table`` from the
  endpoint facts alone, and the cluster discovery's whole ``KubeDiscovery.rebuild`` from its
  informer caches (ModelEndpoint, ModelEntry and EndpointSlice objects as the API server sends
  them): cold (every object parsed), and after one change, as the informers apply a watch event:
  one endpoint's status, one pod going unready in an EndpointSlice, one endpoint (with its slice)
  created; and the gateway metrics following the new table after one pod change (the first
  request after a change, or a scrape, pays it). Median of ``--repeat``.

    .venv/bin/python benchmarks/routing_bench.py [--models 1000 --endpoints 3 --pods 2] [--rebuild-only]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import prometheus_client
from kubernetes import client

from modelyard.api import wire
from modelyard.gateway import balancer, discovery, kube, kube_discovery, metrics, routes


def _infos(models: int, endpoints: int, pods: int) -> list[routes.EndpointInfo]:
    infos = []
    for m in range(models):
        served = f"model-{m:04d}"
        for e in range(endpoints):
            name = f"ns-{m % 10}/{served}-{e}"
            targets = tuple(
                discovery.pod_target(name, f"http://10.{m // 250}.{m % 250}.{e * 16 + p}:8000")
                for p in range(pods)
            )
            infos.append(routes.EndpointInfo(name, served, 100 * (e + 1), True, (), targets))
    return infos


def _decisions(table: routes.RouteTable, count: int, seed: int) -> dict[str, float]:
    chooser = balancer.WeightedLeastBusy()
    rng = random.Random(seed)
    names = list(table.models)
    sequence = [rng.choice(names) for _ in range(count)]
    no_tries: frozenset[str] = frozenset()

    def decide(name: str) -> None:
        model = table.get(name)
        assert model is not None
        choice = chooser.choose(model, no_tries)
        assert choice is not None and choice[1] is not None
        chooser.started(choice[1])
        chooser.finished(choice[1], True)

    for name in sequence[: min(count, 10_000)]:  # warm the balancer's per-name state
        decide(name)
    gc.collect()
    gc.disable()
    try:
        samples = []
        clock = time.perf_counter_ns
        for name in sequence:
            start = clock()
            decide(name)
            samples.append(clock() - start)
        start = clock()
        for name in sequence:
            decide(name)
        mean_us = (clock() - start) / count / 1000
    finally:
        gc.enable()
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] / 1000,
        "p99_us": samples[min(len(samples) - 1, int(0.99 * len(samples)))] / 1000,
        "max_us": samples[-1] / 1000,
        "mean_us": mean_us,
    }


def _objects(models: int, endpoints: int, pods: int) -> tuple[list[Any], list[Any], list[Any]]:
    """ModelEntries, ModelEndpoints and EndpointSlices as the API server would list them."""
    entries, eps, slices = [], [], []
    version = 1000
    for m in range(models):
        served = f"model-{m:04d}"
        entries.append({
            "apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEntry",
            "metadata": {"name": served, "resourceVersion": str(version)},
            "spec": {"source": {"provider": "huggingface", "repo": f"org/{served}"}, "servedName": served,
                     "category": "text-llm", "architecture": "LlamaForCausalLM",
                     "runtime": {"engine": "vllm"}},
            "status": {"phase": "Valid"},
        })  # fmt: skip
        for e in range(endpoints):
            version += 1
            namespace, name = f"ns-{m % 10}", f"{served}-{e}"
            eps.append({
                "apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint",
                "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(version),
                             "generation": 1},
                "spec": {"model": served, "weight": 100 * (e + 1), "replicas": pods,
                         "resources": {"gpus": 1, "gpuType": "NVIDIA-H100-80GB-HBM3"}},
                "status": {"phase": "Ready", "servedName": served, "engine": "vllm", "replicas": pods,
                           "readyReplicas": pods, "ready": f"{pods}/{pods}", "observedGeneration": 1},
            })  # fmt: skip
            slices.append({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": {"name": f"{name}-abcde", "namespace": namespace, "resourceVersion": str(version),
                             "labels": {wire.ENDPOINT: name,
                                        "kubernetes.io/service-name": name}},
                "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": [f"10.{m // 250}.{m % 250}.{e * 16 + p}"], "conditions": {"ready": True},
                     "targetRef": {"kind": "Pod", "name": f"{name}-pod-{p}", "namespace": namespace}}
                    for p in range(pods)
                ],
            })  # fmt: skip
    return entries, eps, slices


def _median_ms(action: Callable[[], Any], repeat: int, before: Callable[[], Any] = lambda: None) -> float:
    times = []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _event(informer: kube.Informer, kind: str, obj: dict[str, Any]) -> None:
    """Apply one watch event to an informer's cache as its watch does (without the loop)."""
    informer._on_change = lambda: None
    informer._apply({"type": kind, "object": copy.deepcopy(obj)}, "")


def _rebuilds(models: int, endpoints: int, pods: int, repeat: int) -> dict[str, float]:
    infos = _infos(models, endpoints, pods)
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # never contacted: the caches are filled by hand
    source = kube_discovery.KubeDiscovery(kube.KubeApi(configuration, "default"), keys_secret=None)
    entries, eps, slices = _objects(models, endpoints, pods)
    source.entries.store = {kube.object_key(o): o for o in entries}
    source.endpoints.store = {kube.object_key(o): o for o in eps}
    source.slices.store = {kube.object_key(o): o for o in slices}
    for informer in (source.entries, source.endpoints, source.slices):
        informer.synced = True  # as after the first listing: routes are built only then
    changed, pod_slice = copy.deepcopy(eps[len(eps) // 2]), copy.deepcopy(slices[len(slices) // 3])
    _, (new_ep,), (new_slice,) = _objects(1, 1, pods)
    new_ep["metadata"].update(name="late-0", namespace="ns-late", creationTimestamp="2030-01-01T00:00:00Z")
    new_ep["spec"]["servedName"] = new_ep["status"]["servedName"] = "late-model"  # a name of its own
    new_slice["metadata"].update(name="late-0-abcde", namespace="ns-late")
    new_slice["metadata"]["labels"][wire.ENDPOINT] = "late-0"

    def cold() -> None:
        source._parsed.clear()
        for informer in (source.entries, source.endpoints, source.slices):
            informer.store = dict(informer.store)  # as a relist: every object may have changed
            informer.relisted = True

    def status_change() -> None:
        version = int(changed["metadata"]["resourceVersion"]) + 1
        changed["metadata"]["resourceVersion"] = str(version)
        changed["status"]["readyReplicas"] = version % (pods + 1)
        _event(source.endpoints, "MODIFIED", changed)
        source.rebuild()

    def pod_change() -> None:
        version = int(pod_slice["metadata"]["resourceVersion"]) + 1
        pod_slice["metadata"]["resourceVersion"] = str(version)
        pod_slice["endpoints"][0]["conditions"]["ready"] = bool(version % 2)
        _event(source.slices, "MODIFIED", pod_slice)
        source.rebuild()

    def created() -> None:
        _event(source.endpoints, "ADDED", new_ep)
        _event(source.slices, "ADDED", new_slice)
        source.rebuild()

    def remove_created() -> None:
        _event(source.endpoints, "DELETED", new_ep)
        _event(source.slices, "DELETED", new_slice)
        source.rebuild()

    stats = metrics.Metrics(prometheus_client.CollectorRegistry())

    def follow_after_change() -> None:
        stats.follow(source.table())
        pod_change()  # the first request after it, or a scrape, follows the new table

    result = {
        "build_table_ms": _median_ms(lambda: routes.build_table(infos), repeat),
        "discovery_rebuild_cold_ms": _median_ms(source.rebuild, repeat, cold),
        "discovery_rebuild_one_change_ms": _median_ms(status_change, repeat),
        "discovery_rebuild_pod_change_ms": _median_ms(pod_change, repeat),
        "discovery_rebuild_created_ms": _median_ms(created, repeat, remove_created),
        "metrics_follow_one_change_ms": _median_ms(
            lambda: stats.follow(source.table()), repeat, follow_after_change
        ),
    }
    assert len(source.table().models) == models + 1 and source.table().ready_names()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=1000, help="served names in the large table")
    parser.add_argument("--endpoints", type=int, default=3, help="weighted endpoints per served name")
    parser.add_argument("--pods", type=int, default=2, help="ready pods per endpoint")
    parser.add_argument("--decisions", type=int, default=100_000, help="routing decisions per table")
    parser.add_argument("--repeat", type=int, default=5, help="rebuilds per measurement (median)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild-only", action="store_true", help="skip the decision timings")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for models in dict.fromkeys((args.models, 1)):
        table = routes.build_table(_infos(models, args.endpoints, args.pods))
        results[str(models)] = {
            **({} if args.rebuild_only else _decisions(table, args.decisions, args.seed)),
            **_rebuilds(models, args.endpoints, args.pods, args.repeat),
        }
    print(f"\n{args.endpoints} endpoints x {args.pods} pods per served name, {args.decisions} decisions")
    columns = {
        "p50 µs": "p50_us", "p99 µs": "p99_us", "mean µs": "mean_us", "build_table ms": "build_table_ms",
        "rebuild cold ms": "discovery_rebuild_cold_ms", "1 status ms": "discovery_rebuild_one_change_ms",
        "1 pod ms": "discovery_rebuild_pod_change_ms", "1 created ms": "discovery_rebuild_created_ms",
        "follow ms": "metrics_follow_one_change_ms",
    }  # fmt: skip
    shown = {h: k for h, k in columns.items() if k in results["1"]}
    print(" ".join(f"{h:>{max(len(h), 8)}}" for h in ["models", *shown]))
    for models, r in results.items():
        cells = " ".join(f"{r[k]:>{max(len(h), 8)}.3f}" for h, k in shown.items())
        print(f"{models:>8} {cells}")
    ratio: dict[str, float] = {}
    if not args.rebuild_only:
        big, one = results[str(args.models)], results["1"]
        ratio = {"p50": big["p50_us"] / one["p50_us"], "mean": big["mean_us"] / one["mean_us"]}
        print(f"decisions, {args.models} names / 1: p50 {ratio['p50']:.2f}x, mean {ratio['mean']:.2f}x")
    print(json.dumps({"args": vars(args), "results": results, "ratio_big_over_one": ratio}))


if __name__ == "__main__":
    main()
