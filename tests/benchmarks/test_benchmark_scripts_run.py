"""The benchmark scripts under benchmarks/ still run, in a tiny mode, so they cannot rot.

Each script is run as a user would run it and its JSON summary is checked for what it counts
(requests served, objects Ready), never for how fast: speed figures come from full runs on a
known machine (docs/benchmarks.md), not from CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kit

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"{script} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def test_soak_serves_every_request_and_samples_memory() -> None:
    summary = _run("soak.py", "--duration", "3", "--window", "1.5", "--rate", "20", "--sample", "0.5",
                   "--max-growth", "1000", "--bursts", "1", "--burst-size", "100", timeout=120)  # fmt: skip
    assert summary["requests"] > 0 and summary["errors"] == 0
    assert len(summary["windows"]) >= 1 and {"plain", "stream"} <= summary["windows"][0].keys()
    assert len(summary["rss_samples"]) >= 2 and summary["rss_end_mib"] > 0
    assert len(summary["rss_after_bursts_mib"]) == 1 and summary["shed"] == 0


def test_routing_bench_compares_a_large_table_with_one_model() -> None:
    summary = _run("routing_bench.py", "--models", "20", "--decisions", "2000", "--repeat", "1", timeout=120)
    assert set(summary["results"]) == {"20", "1"}
    for result in summary["results"].values():
        assert result["p50_us"] > 0 and result["p99_us"] >= result["p50_us"]
        assert result["discovery_rebuild_one_change_ms"] > 0


def test_gateway_bench_measures_modelyard_and_the_installed_peers_side_by_side(tmp_path: Path) -> None:
    """Peers are optional: the run uses vllm-router where install_peers.sh put it and says why
    it is absent otherwise (LiteLLM, far slower to start, is left to the full runs); the bare
    aiohttp proxy, part of the repository, runs when named."""
    if not shutil.which("wrk"):
        if os.environ.get("CI"):
            raise AssertionError("wrk is missing: .ci/setup installs it")
        print("skipped: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        pytest.skip("wrk is not installed (apt-get install -y wrk)")
    tree = str(ROOT / "operator")
    summary = _run("gateway_bench.py", "--duration", "1", "--repeat", "1", "--rate", "20", "--low-rate", "10",
                   "--connections", "4", "--targets", "direct,modelyard,vllm-router,aiohttp-bare",
                   "--modelyard", f"before={tree}", "--modelyard", f"after={tree}", timeout=600)  # fmt: skip
    mine = ["direct", "before", "after"]
    peers = ["vllm-router"] if "vllm-router" in summary["results"] else []
    if not peers:
        print(f"vllm-router absent: {summary['absent']['vllm-router']}", file=sys.stderr)
        assert "install_peers.sh" in summary["absent"]["vllm-router"]
    peers += ["aiohttp-bare"]  # the reference floor: bare_aiohttp_proxy.py, always there
    assert list(summary["results"]) == mine + peers and "litellm" not in summary["absent"]
    for name in mine + peers:
        for kind in ("plain", "stream"):
            result = summary["results"][name][kind]
            assert result["rps"] > 0 and result["non_2xx"] == 0 and result["errors"] == 0, (name, kind)
        assert summary["targets"][name]["version"]
    assert summary["targets"]["after"]["version"].startswith("modelyard ")
    assert set(summary["ratios"]) == {f"{m}/{p}" for m in ("before", "after") for p in peers}
    assert len(summary["load"]) == 1 + 2 and all(
        len(load) == 3 for load in summary["load"]
    )  # start, 2 phases


@pytest.mark.slow
@pytest.mark.cluster
def test_scale_bench_converges_a_few_endpoints_with_and_without_the_operator(tmp_path: Path) -> None:
    kit.local_binaries("the local control plane binaries")
    summary = _run("scale_bench.py", "--entries", "3", "--timeout", "180", "--settle", "1",
                   "--json", str(tmp_path / "scale.json"), timeout=600)  # fmt: skip
    assert json.loads((tmp_path / "scale.json").read_text()) == summary
    limit, operator = summary["limit"], summary["operator"]
    assert limit["children_ready_s"] is not None and limit["api_requests"]["POST"] >= 12
    assert operator["ready_count"] == 3 and operator["entries_valid"] == 3
    assert operator["reconciles"].get("ModelEndpoint/Ready", 0) >= 3
    assert operator["rss_peak_mib"] > 0 and operator["cluster_cpu_s_to_ready"]["apiserver"] > 0
    # counted from a watch: the timeline ends at the count that was waited for
    assert summary["count"] == "watch" and operator["timeline"][-1][1] == 3 and limit["timeline"][-1][1] == 3


@pytest.mark.slow
@pytest.mark.cluster
def test_apiserver_cost_measures_every_kind_of_request() -> None:
    kit.local_binaries("the local control plane binaries")
    costs = _run("apiserver_cost.py", "--count", "20", timeout=600)
    assert {"create ModelEntry", "entry status, no change", "endpoint status", "post Event"} <= set(costs)
    assert all(step["requests"] > 0 and step["apiserver_cpu_s"] >= 0 for step in costs.values())
    assert costs["create Service"]["requests"] == 20


def test_index_memory_counts_the_stores_each_and_together() -> None:
    summary = _run("index_memory.py", "--entries", "60", timeout=120)
    kib = summary["kib_per_entry"]
    assert summary["entries"] == 60 and all(kib[store] > 0 for store in ("index", "ownership", "mirror"))
    # the three stores share their keys and short strings (registry/documents.plain)
    assert kib["all"] < 0.9 * (kib["index"] + kib["ownership"] + kib["mirror"])


def test_scale_plot_extrapolates_the_limit_of_an_operator_only_run(tmp_path: Path) -> None:
    def run(n: int, operator_s: float, limit_s: float | None) -> Path:
        timeline = [[operator_s / 2, n // 2], [operator_s, n]]
        operator = {"ready_s": operator_s, "timeline": timeline}
        summary: dict[str, Any] = {"entries": n, "load_avg_start": [1.0], "operator": operator}
        if limit_s is not None:
            summary["limit"] = {"total_s": limit_s, "timeline": [[limit_s, n]]}
        path = tmp_path / f"scale{n}.json"
        path.write_text(json.dumps(summary))
        return path

    # the limit takes 0.1 s per endpoint; the 400 run measured the operator only
    files = [run(400, 70.0, None), run(100, 15.0, 10.0), run(200, 30.0, 20.0)]
    png = tmp_path / "scale.png"
    summary = _run("scale_plot.py", *map(str, files), "--png", str(png), timeout=120)
    assert [(r["n"], r["limit_s"], r["extrapolated"]) for r in summary["runs"]] == [
        (100, 10.0, False), (200, 20.0, False), (400, pytest.approx(40.0), True)
    ]  # fmt: skip
    assert summary["runs"][2]["ratio"] == pytest.approx(70.0 / 40.0)
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
@pytest.mark.cluster
def test_catalog_bench_validates_every_entry_and_lists_them_all(tmp_path: Path) -> None:
    kit.local_binaries("the local control plane binaries")
    summary = _run("catalog_bench.py", "--entries", "30", "--small", "10", "--requests", "20",
                   "--settle", "0.5", "--timeout", "180", "--json", str(tmp_path / "catalog.json"),
                   timeout=600)  # fmt: skip
    assert json.loads((tmp_path / "catalog.json").read_text()) == summary
    for step, count, created in (("small", 10, 10), ("big", 30, 20)):
        measured = summary[step]
        assert measured["valid"] == count and measured["all_valid_s"] is not None
        assert measured["model_list"]["page"]["total"] == count
        assert measured["model_list"]["limit1000"]["total"] == count
        assert measured["api_requests"]["POST"] >= created
    assert summary["rss_peak_mib"] >= summary["rss_idle_mib"] > 0


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.model
def test_autoscale_bench_cold_starts_and_ramps_losing_nothing(tmp_path: Path) -> None:
    """``--quick``: one cold start of the tiny Llama from zero, the runtime by hand, a 30 s ramp."""
    from modelyard.local import build

    try:
        build.ensure_built(lambda msg: print(msg, file=sys.stderr))
    except build.BuildError as exc:
        if os.environ.get("CI"):
            raise
        print(f"skipped: the local control plane binaries cannot be built: {exc}", file=sys.stderr)
        pytest.skip(f"the local control plane binaries cannot be built: {exc}")
    png = tmp_path / "ramp.png"
    summary = _run("autoscale_bench.py", "--quick", "--png", str(png), timeout=900)
    cold = summary["cold_start"]["tiny"]
    assert cold["lost_per_cycle"] == [0]
    assert all(cold[k]["p50"] >= 0 for k in ("schedule_s", "load_s", "probe_s", "answer_s"))
    assert cold["total_s"]["p50"] > 0 and summary["by_hand"]["tiny"]["first_answer_s"]["p50"] > 0
    ramp = summary["ramp"]
    assert ramp["requests"] > 0 and ramp["lost"] == 0 and ramp["max_replicas"] >= 1
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
@pytest.mark.model
def test_prefix_routing_bench_runs_both_strategies_side_by_side() -> None:
    """Requests one at a time: PrefixHash sends each tenant's later users to the replica that
    cached the tenant's prompt, so they hit; the counts, not the timings, are checked. The pods'
    queue signal is on (1 s): a scrape that caught the previous request counts that request as
    the gateway's own, so once it has finished its pod is idle again and the next request is not
    spilled by the load bound (before that, a CI run saw 3 hits of 6)."""
    summary = _run("prefix_routing_bench.py", "--tenants", "2", "--users", "3", "--system-tokens", "300",
                   "--concurrency", "1", "--rounds", "1", "--rate", "20", "--duration", "1", "--repeat", "1",
                   timeout=600)  # fmt: skip
    chat, latency = summary["chat"], summary["latency"]
    assert {name: r["requests"] for name, r in chat.items()} == {"LeastBusy": 6, "PrefixHash": 6}
    assert chat["PrefixHash"]["hit_rate"] >= 4 / 6  # every tenant misses once, on its own replica
    assert all(0 < r["ttft_p50_ms"] <= r["ttft_p95_ms"] for r in chat.values())
    assert set(latency) == {"direct", "LeastBusy", "PrefixHash"}
    assert all(r["errors"] == 0 and r["requests"] == 20 for r in latency.values())
