"""Gateway benchmark: the same fast fake model server reached directly, through modelyard's
gateway, through vLLM's Rust router and through LiteLLM's proxy, one after the other in one run.

Measured for each, non-streaming and streaming (10 SSE chunks):

* throughput at saturation: ``wrk`` (Debian's ``apt-get install -y wrk``), POST via a Lua
  script, one thread, ``--connections`` connections; with it the proxy's CPU time per request
  (user + system of its process and its children over the run, per request wrk completed),
  which a shared machine disturbs far less than requests per second: its inverse is the
  throughput per core;
* latency at a fixed rate (default 500 requests/s, open loop, see ``loadgen.py``): p50/p99
  (the median of ``--repeat`` runs, as the machine may be shared), and the latency *added*
  over the direct path.

The proxy under test is pinned to one core (``--proxy-core``); the fake server and the load
generators share the other (``--load-core``). The peers are not dependencies of modelyard:
``benchmarks/install_peers.sh`` puts each in its own virtual environment under
``~/.cache/modelyard/bench`` (``--peers-dir``), where this script finds them; a peer that is
not there is left out, and the run says why::

    bash benchmarks/install_peers.sh        # vllm-router 0.1.17 and litellm[proxy]
    .venv/bin/python benchmarks/gateway_bench.py --duration 5 --repeat 3

``--modelyard LABEL=DIR`` (repeatable) runs modelyard's gateway from the source tree ``DIR``
(put first on ``PYTHONPATH``), so two versions, "before" and "after" a change, are measured
side by side in the same run as the peers::

    .venv/bin/python benchmarks/gateway_bench.py --modelyard before=/src/main/operator \
        --modelyard after=/src/branch/operator --duration 5 --repeat 3

What each target has on (the same model ``bench`` on two endpoints that are the same fake
server):

* modelyard: bearer-key auth, Prometheus ``/metrics``, the weighted split (3:1), 2 retries,
  ejection of failing targets (all its defaults);
* vllm-router: ``--policy round_robin`` over two worker URLs, Prometheus metrics on a port of
  its own, its default retries and circuit breaker; it has no client authentication (its
  ``--api-key`` is the key it sends to workers) and no weights;
* LiteLLM: master-key auth, two deployments weighted 3:1 (``simple-shuffle``), no database;
* aiohttp-bare (only when named in ``--targets``): ``bare_aiohttp_proxy.py``, aiohttp's server
  and client with nothing else, the floor of any gateway built on them;
* lean-bare (only when named): the same with the gateway's lean upstream client
  (``--client lean``), the floor of the gateway as it is built now.

The last line printed is a JSON summary: the results, each target's version, features and
load averages, the throughput ratios, and why an absent peer is absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_DIR = Path(os.environ.get("BENCH_PEERS", Path.home() / ".cache" / "modelyard" / "bench"))
KEY = "sk-bench-0123456789abcdef"  # modelyard and LiteLLM authenticate this bearer key
BODY = {"model": "bench", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}


def _pinned(core: str | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", core, *command] if core and shutil.which("taskset") else command


def _wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    body = json.dumps(BODY).encode()
    while time.monotonic() < deadline:
        try:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
            request = urllib.request.Request(url, data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not become ready")


def _wrk(
    url: str, stream: bool, duration: int, connections: int, core: str | None, tmp: Path
) -> dict[str, float]:
    script = tmp / ("stream.lua" if stream else "plain.lua")
    body = json.dumps({**BODY, "stream": stream})
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {KEY}"\n'
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url]
    out = subprocess.run(_pinned(core, command), capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    done = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "non_2xx": float(errors.group(1)) if errors else 0.0, "requests": done}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its descendants (Linux /proc)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):  # gone meanwhile
        pass
    return total


def _loadgen(url: str, stream: bool, rate: float, duration: float, core: str | None) -> dict[str, float]:
    command = [sys.executable, str(HERE / "loadgen.py"), "--url", url, "--rate", str(rate)]
    command += ["--duration", str(duration), "--key", KEY] + (["--stream"] if stream else [])
    out = subprocess.run(_pinned(core, command), capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    url: str
    command: list[str] | None  # None: the fake server itself (already running)
    version: str
    features: str
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    pids: list[int] = dataclasses.field(default_factory=list)  # its process, once started


def _modelyard(label: str, tree: str | None, port: int, upstream: str, tmp: Path) -> Target:
    routes = tmp / "routes.yaml"
    routes.write_text(
        "models:\n  - name: bench\n    endpoints:\n"
        f"      - {{name: bench/a, weight: 300, urls: ['{upstream}']}}\n"
        f"      - {{name: bench/b, weight: 100, urls: ['{upstream}']}}\n"
        f"apiKeys: {{bench: {KEY}}}\n"
    )
    command = [sys.executable, "-m", "modelyard", "gateway", "--routes", str(routes), "--host", "127.0.0.1",
               "--port", str(port), "--retry-attempts", "2", "--log-level", "WARNING"]  # fmt: skip
    env = {"PYTHONPATH": os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")])} if tree else {}
    features = "bearer-key auth, /metrics, weighted split 3:1, 2 retries, ejection"
    return Target(label, _chat_url(port), command, _commit(tree), features, env)


def _vllm_router(binary: str, port: int, upstream: str) -> Target:
    # Two worker URLs that are the same fake server, as the others have two endpoints.
    workers = [upstream, upstream.replace("127.0.0.1", "localhost")]
    command = [binary, "--host", "127.0.0.1", "--port", str(port), "--worker-urls", *workers,
               "--policy", "round_robin", "--prometheus-port", str(_free_port()),
               "--log-level", "warning"]  # fmt: skip
    features = "round_robin over 2 workers, Prometheus metrics, default retries + circuit breaker, no auth"
    return Target("vllm-router", _chat_url(port), command, _package_version(binary, "vllm-router"), features)


def _litellm(binary: str, port: int, upstream: str, tmp: Path) -> Target:
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        f"    litellm_params: {{model: openai/bench, api_base: '{upstream}/v1', api_key: x, weight: 3}}\n"
        "  - model_name: bench\n"
        f"    litellm_params: {{model: openai/bench, api_base: '{upstream}/v1', api_key: x, weight: 1}}\n"
        "router_settings: {routing_strategy: simple-shuffle}\n"
        "litellm_settings: {telemetry: false, drop_params: true, set_verbose: false}\n"
        f"general_settings: {{master_key: {KEY}}}\n"
    )
    command = [binary, "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
               "--num_workers", "1"]  # fmt: skip
    features = "master-key auth, 2 deployments weighted 3:1 (simple-shuffle), no database"
    return Target("litellm", _chat_url(port), command, _package_version(binary, "litellm"), features)


def _bare(port: int, upstream: str) -> Target:
    command = [sys.executable, str(HERE / "bare_aiohttp_proxy.py"), "--port", str(port),
               "--upstream", upstream]  # fmt: skip
    features = "none: aiohttp's server and client relaying bytes (a reference floor)"
    return Target("aiohttp-bare", _chat_url(port), command, "bare_aiohttp_proxy.py", features)


def _lean_bare(port: int, upstream: str) -> Target:
    command = [sys.executable, str(HERE / "bare_aiohttp_proxy.py"), "--port", str(port),
               "--upstream", upstream, "--client", "lean"]  # fmt: skip
    features = "none: aiohttp's server and the gateway's lean client relaying bytes (a reference floor)"
    env = {"PYTHONPATH": os.pathsep.join([str(HERE.parent / "operator"), os.environ.get("PYTHONPATH", "")])}
    return Target("lean-bare", _chat_url(port), command, "bare_aiohttp_proxy.py --client lean", features, env)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _chat_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/chat/completions"


def _peer(explicit: str | None, peers_dir: Path, venv: str, executable: str) -> tuple[str | None, str]:
    """The peer's executable, or None and why it is absent."""
    path = Path(explicit) if explicit else peers_dir / venv / "bin" / executable
    if os.access(path, os.X_OK):
        return str(path), ""
    how = "" if explicit else " (install it: bash benchmarks/install_peers.sh)"
    return None, f"no executable {path}{how}"


def _package_version(binary: str, package: str) -> str:
    python = Path(binary).parent / "python"
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return f"{package} {done.stdout.strip()}" if done.returncode == 0 else f"{package} (version unknown)"


def _commit(tree: str | None) -> str:
    """The commit of modelyard's source tree ``tree`` (this checkout when None), '+' if edited."""
    where = tree or str(HERE)
    head = subprocess.run(["git", "-C", where, "log", "-1", "--format=%h"], capture_output=True, text=True)
    if head.returncode != 0:
        return where
    dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return f"modelyard {head.stdout.strip()}{'+' if dirty else ''} ({where})"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR,
                        help="the peers' venvs (install_peers.sh; env BENCH_PEERS)")  # fmt: skip
    parser.add_argument("--litellm", help="LiteLLM's `litellm` command (default: in --peers-dir)")
    parser.add_argument("--vllm-router", help="the `vllm-router` command (default: in --peers-dir)")
    parser.add_argument("--modelyard", action="append", metavar="LABEL=DIR", default=[],
                        help="modelyard's gateway from source tree DIR, as target LABEL (repeatable; "
                        "default: one target 'modelyard' from this environment)")  # fmt: skip
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rate", type=float, default=500, help="requests/s for the latency runs")
    parser.add_argument("--low-rate", type=float, default=20, help="requests/s for an unloaded latency run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections at saturation")
    parser.add_argument("--repeat", type=int, default=3, help="latency runs per case; the median is reported")
    parser.add_argument("--targets", default="direct,modelyard,vllm-router,litellm",
                        help="comma-separated subset ('modelyard': every --modelyard label; "
                        "add 'aiohttp-bare' for the bare aiohttp proxy, 'lean-bare' for it "
                        "with the lean client)")  # fmt: skip
    parser.add_argument("--proxy-core", default="0")
    parser.add_argument("--load-core", default="1")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install -y wrk): it measures throughput")

    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "PYTHONUNBUFFERED": "1"}
    upstream_port = _free_port()  # free ports: others may run this benchmark at the same time
    upstream = f"http://127.0.0.1:{upstream_port}"
    fake = subprocess.Popen(
        _pinned(
            args.load_core, [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(upstream_port)]
        )
    )
    wanted = set(args.targets.split(","))
    targets = [Target("direct", _chat_url(upstream_port), None, "fake_upstream.py", "none")]
    variants = [label.partition("=")[::2] for label in args.modelyard] or [("modelyard", "")]
    if "modelyard" in wanted:
        targets += [_modelyard(label, tree or None, _free_port(), upstream, tmp) for label, tree in variants]
    absent: dict[str, str] = {}
    router, absent["vllm-router"] = _peer(args.vllm_router, args.peers_dir, "vllm-router-venv", "vllm-router")
    if router and "vllm-router" in wanted:
        targets.append(_vllm_router(router, _free_port(), upstream))
    litellm, absent["litellm"] = _peer(args.litellm, args.peers_dir, "litellm-venv", "litellm")
    if litellm and "litellm" in wanted:
        targets.append(_litellm(litellm, _free_port(), upstream, tmp))
    if "aiohttp-bare" in wanted:
        targets.append(_bare(_free_port(), upstream))
    if "lean-bare" in wanted:
        targets.append(_lean_bare(_free_port(), upstream))
    absent = {name: why for name, why in absent.items() if why and name in wanted}
    for name, why in absent.items():
        print(f"{name}: left out, {why}", flush=True)
    targets = [t for t in targets if t.name != "direct" or "direct" in wanted]
    processes = []
    try:
        for target in targets:  # all at once, each on its own port: idle while another is measured
            if target.command is not None:
                log = (tmp / f"{target.name}.log").open("w")
                command = _pinned(args.proxy_core, target.command)
                processes.append(subprocess.Popen(command, stdout=log, stderr=log, env={**env, **target.env}))
                target.pids.append(processes[-1].pid)
        for target in targets:
            _wait_ready(target.url)
        time.sleep(1)
        loads = [_load()]
        results = _measure(targets, args, tmp, loads)
    finally:
        for process in [*processes, fake]:
            process.terminate()
        for process in [*processes, fake]:
            process.wait(30)
    about = {t.name: {"version": t.version, "features": t.features} for t in targets}
    ratios = _report(results, about, args.rate, [label for label, _ in variants], loads)
    summary = {"results": results, "targets": about, "ratios": ratios, "absent": absent, "load": loads}
    print(json.dumps(summary))


def _measure(
    targets: list[Target], args: argparse.Namespace, tmp: Path, loads: list[list[float]]
) -> dict[str, dict[str, dict[str, float]]]:
    """Each measurement in rounds over the targets, so that the machine's other load, which
    changes by the minute, falls on all of them alike; ``loads`` gets the load average of
    each round. After each run the target must answer one request again before the next
    starts: a proxy still working off a queue (LiteLLM) would take the proxy core from the next."""

    def saturate(target: Target, stream: bool, duration: int) -> dict[str, float]:
        used = sum(_cpu_seconds(pid) for pid in target.pids)
        result = _wrk(target.url, stream, duration, args.connections, args.load_core, tmp)
        if target.pids and result["requests"]:
            used = sum(_cpu_seconds(pid) for pid in target.pids) - used
            result["cpu_us"] = used / result["requests"] * 1e6
        _wait_ready(target.url, timeout=600)
        return result

    def at_rate(target: Target, stream: bool, rate: float) -> dict[str, float]:
        result = _loadgen(target.url, stream, rate, args.duration, args.load_core)
        _wait_ready(target.url, timeout=600)
        return result

    kinds = {"plain": False, "stream": True}
    sat: dict[tuple[str, str], list[dict[str, float]]] = {(t.name, k): [] for t in targets for k in kinds}
    latency: dict[tuple[str, str], list[dict[str, float]]] = {key: [] for key in sat}
    for stream in kinds.values():
        for target in targets:
            saturate(target, stream, min(2, args.duration))  # warm-up
    for _ in range(args.repeat):
        for kind, stream in kinds.items():
            for target in targets:
                sat[target.name, kind].append(saturate(target, stream, args.duration))
        loads.append(_load())
    rps = {key: statistics.median(run["rps"] for run in runs) for key, runs in sat.items()}
    low = {
        (target.name, kind): at_rate(target, stream, args.low_rate)
        for kind, stream in kinds.items()
        for target in targets
    }
    for _ in range(args.repeat):
        for kind, stream in kinds.items():
            for target in targets:
                if rps[target.name, kind] >= args.rate * 1.2:  # else the queue only grows: no figure
                    latency[target.name, kind].append(at_rate(target, stream, args.rate))
        loads.append(_load())
    results: dict[str, dict[str, dict[str, float]]] = {t.name: {} for t in targets}
    for (name, kind), runs in sat.items():
        result = {
            "rps": rps[name, kind],
            "rps_min": min(run["rps"] for run in runs),
            "rps_max": max(run["rps"] for run in runs),
            "non_2xx": sum(run["non_2xx"] for run in runs),
            "low_p50_ms": low[name, kind]["p50_ms"],
            "low_p99_ms": low[name, kind]["p99_ms"],
        }
        if all("cpu_us" in run for run in runs):
            result["cpu_us"] = statistics.median(run["cpu_us"] for run in runs)
        if latency[name, kind]:
            runs = latency[name, kind]
            result.update({k: statistics.median(run[k] for run in runs) for k in runs[0]})
        results[name][kind] = result
        print(name, kind, json.dumps(result), flush=True)
    return results


def _report(
    results: dict[str, dict[str, dict[str, float]]],
    about: dict[str, dict[str, str]],
    rate: float,
    ours: list[str],
    loads: list[list[float]],
) -> dict[str, dict[str, float | None]]:
    """Print the table; return each modelyard target's throughput over each peer's."""
    nan = float("nan")
    print(f"\n{'target':<12} {'kind':<7} {'req/s sat':>10} {'CPU us/req':>10} {'idle p50':>9} | "
          f"{'p50 ms':>7} {'p99 ms':>7} {'+p50 ms':>8} {'+p99 ms':>8}  (at {rate:g} req/s)")  # fmt: skip
    direct = results.get("direct", {})
    for name, kinds in results.items():
        for kind, r in kinds.items():
            base = direct.get(kind, {})
            p50, p99 = r.get("p50_ms", nan), r.get("p99_ms", nan)
            added50, added99 = p50 - base.get("p50_ms", nan), p99 - base.get("p99_ms", nan)
            cpu = r.get("cpu_us", nan)
            print(f"{name:<12} {kind:<7} {r['rps']:>10.0f} {cpu:>10.0f} {r['low_p50_ms']:>9.2f} | "
                  f"{p50:>7.2f} {p99:>7.2f} {added50:>8.2f} {added99:>8.2f}")  # fmt: skip
    print("(nan: the target saturates below that rate; 'idle p50': latency at --low-rate)")
    for name, facts in about.items():
        print(f"{name}: {facts['version']}")
    print(f"load average (1, 5, 15 min) at the start and after each round: {loads}")
    ratios: dict[str, dict[str, float | None]] = {}
    for mine in (name for name in ours if name in results):
        for peer in (
            name for name in ("vllm-router", "litellm", "aiohttp-bare", "lean-bare") if name in results
        ):
            # None: the peer completed no request within a saturation run
            ratio = {
                kind: results[mine][kind]["rps"] / results[peer][kind]["rps"]
                if results[peer][kind]["rps"]
                else None
                for kind in results[mine]
            }
            shown = {kind: "n/a" if r is None else f"{r:.3g}x" for kind, r in ratio.items()}
            print(f"throughput {mine} / {peer}: {shown['plain']} plain, {shown['stream']} stream")
            # per core, from CPU time per request: theirs over ours
            for kind in list(ratio):
                own_cpu, peer_cpu = results[mine][kind].get("cpu_us"), results[peer][kind].get("cpu_us")
                ratio[f"{kind}_per_cpu"] = peer_cpu / own_cpu if own_cpu and peer_cpu else None
            ratios[f"{mine}/{peer}"] = ratio
            per = {k: "n/a" if ratio[f"{k}_per_cpu"] is None else f"{ratio[f'{k}_per_cpu']:.3g}x"
                   for k in ("plain", "stream")}  # fmt: skip
            print(f"  per CPU second (CPU us/request, {peer} / {mine}): {per['plain']} plain, "
                  f"{per['stream']} stream")  # fmt: skip
    return ratios


if __name__ == "__main__":
    main()
