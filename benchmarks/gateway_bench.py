"""Gateway benchmark: the same fast fake model server reached directly, through modelyard's
gateway, and through LiteLLM's proxy, one after the other on the same machine.

Measured for each, non-streaming and streaming (10 SSE chunks):

* throughput at saturation: ``wrk`` (Debian's ``apt-get install -y wrk``), POST via a Lua
  script, one thread, ``--connections`` connections;
* latency at a fixed rate (default 500 requests/s, open loop, see ``loadgen.py``): p50/p99
  (the median of ``--repeat`` runs, as the machine may be shared), and the latency *added*
  over the direct path.

The proxy under test is pinned to one core (``--proxy-core``); the fake server and the load
generators share the other (``--load-core``). LiteLLM is not a dependency of modelyard:
install it into a separate virtual environment for this run only::

    python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'
    .venv/bin/python benchmarks/gateway_bench.py --litellm /tmp/litellm-venv/bin/litellm

Both proxies get the same weighted table: model ``bench`` on two endpoints (weights 3:1)
that are the same fake server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "sk-bench-0123456789abcdef"  # both proxies authenticate this bearer key
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
    return {"rps": rps, "non_2xx": float(errors.group(1)) if errors else 0.0}


def _loadgen(url: str, stream: bool, rate: float, duration: float, core: str | None) -> dict[str, float]:
    command = [sys.executable, str(HERE / "loadgen.py"), "--url", url, "--rate", str(rate)]
    command += ["--duration", str(duration), "--key", KEY] + (["--stream"] if stream else [])
    out = subprocess.run(_pinned(core, command), capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _modelyard(port: int, upstream: str, tmp: Path) -> list[str]:
    routes = tmp / "routes.yaml"
    routes.write_text(
        "models:\n  - name: bench\n    endpoints:\n"
        f"      - {{name: bench/a, weight: 300, urls: ['{upstream}']}}\n"
        f"      - {{name: bench/b, weight: 100, urls: ['{upstream}']}}\n"
        f"apiKeys: {{bench: {KEY}}}\n"
    )
    return [sys.executable, "-m", "modelyard", "gateway", "--routes", str(routes), "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "WARNING"]  # fmt: skip


def _litellm(binary: str, port: int, upstream: str, tmp: Path) -> list[str]:
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
    return [binary, "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--litellm", help="path to LiteLLM's `litellm` command (skipped when absent)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rate", type=float, default=500, help="requests/s for the latency runs")
    parser.add_argument("--low-rate", type=float, default=20, help="requests/s for an unloaded latency run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections at saturation")
    parser.add_argument("--repeat", type=int, default=3, help="latency runs per case; the median is reported")
    parser.add_argument("--targets", default="direct,modelyard,litellm", help="comma-separated subset")
    parser.add_argument("--proxy-core", default="0")
    parser.add_argument("--load-core", default="1")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "PYTHONUNBUFFERED": "1"}
    upstream_port, proxy_port = 9100, 9200
    upstream = f"http://127.0.0.1:{upstream_port}"
    fake = subprocess.Popen(
        _pinned(
            args.load_core, [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(upstream_port)]
        )
    )
    targets: list[tuple[str, list[str] | None, str]] = [("direct", None, f"{upstream}/v1/chat/completions")]
    proxy_url = f"http://127.0.0.1:{proxy_port}/v1/chat/completions"
    targets.append(("modelyard", _modelyard(proxy_port, upstream, tmp), proxy_url))
    if args.litellm:
        targets.append(("litellm", _litellm(args.litellm, proxy_port, upstream, tmp), proxy_url))
    wanted = set(args.targets.split(","))
    targets = [t for t in targets if t[0] in wanted]
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for name, command, url in targets:
            process = None
            if command is not None:
                log = (tmp / f"{name}.log").open("w")
                process = subprocess.Popen(_pinned(args.proxy_core, command), stdout=log, stderr=log, env=env)
            try:
                _wait_ready(url)
                time.sleep(1)
                results[name] = {}
                for stream in (False, True):
                    kind = "stream" if stream else "plain"
                    _wrk(url, stream, 2, args.connections, args.load_core, tmp)  # warm-up
                    sat = _wrk(url, stream, args.duration, args.connections, args.load_core, tmp)
                    low = _loadgen(url, stream, args.low_rate, args.duration, args.load_core)
                    result = {**sat, "low_p50_ms": low["p50_ms"], "low_p99_ms": low["p99_ms"]}
                    if sat["rps"] >= args.rate * 1.2:  # else it cannot sustain the rate: the queue only grows
                        runs = [
                            _loadgen(url, stream, args.rate, args.duration, args.load_core)
                            for _ in range(args.repeat)
                        ]
                        result.update({k: statistics.median(r[k] for r in runs) for k in runs[0]})
                    results[name][kind] = result
                    print(name, kind, json.dumps(results[name][kind]), flush=True)
            finally:
                if process is not None:
                    process.terminate()
                    process.wait(30)
    finally:
        fake.terminate()
        fake.wait(10)
    _report(results, args.rate)


def _report(results: dict[str, dict[str, dict[str, float]]], rate: float) -> None:
    nan = float("nan")
    print(f"\n{'target':<10} {'kind':<7} {'req/s sat':>10} {'idle p50':>9} | {'p50 ms':>7} {'p99 ms':>7} "
          f"{'+p50 ms':>8} {'+p99 ms':>8}  (at {rate:g} req/s)")  # fmt: skip
    direct = results.get("direct", {})
    for name, kinds in results.items():
        for kind, r in kinds.items():
            base = direct.get(kind, {})
            p50, p99 = r.get("p50_ms", nan), r.get("p99_ms", nan)
            added50, added99 = p50 - base.get("p50_ms", nan), p99 - base.get("p99_ms", nan)
            print(f"{name:<10} {kind:<7} {r['rps']:>10.0f} {r['low_p50_ms']:>9.2f} | {p50:>7.2f} {p99:>7.2f} "
                  f"{added50:>8.2f} {added99:>8.2f}")  # fmt: skip
    print("(nan: the target saturates below that rate; 'idle p50': latency at --low-rate)")
    if "modelyard" in results and "litellm" in results:
        for kind in ("plain", "stream"):
            ratio = results["modelyard"][kind]["rps"] / max(results["litellm"][kind]["rps"], 1e-9)
            print(f"throughput modelyard / litellm ({kind}): {ratio:.1f}x")


if __name__ == "__main__":
    main()
