"""Gateway soak: steady load for a long time, watching the gateway's memory.

Starts ``benchmarks/fake_upstream.py`` and ``modelyard gateway --routes`` (a static table of
``--models`` served names, two weighted endpoints each, API keys on; no cluster), then drives
it with ``benchmarks/loadgen.py`` (open loop) in windows of ``--window`` seconds for
``--duration`` seconds in all: in each window a plain and a streaming load generator run side by
side on two of the models (rotating, so every model and endpoint is used). Every ``--sample``
seconds it records the gateway's RSS and CPU time (psutil).

It reports the RSS when the warm-up ends (``--warmup`` seconds) and at the end, the growth in
per cent, requests served, errors, and p50/p99 per window. Prints a table and one JSON object
(also written to ``--json``). Exit status 1 when the growth exceeds ``--max-growth`` (5 %).

Each load generator sends on schedule but never keeps more than ``--max-in-flight`` requests
open: when the machine starves the gateway, the sends beyond are counted as shed instead of
piling up thousands of concurrent requests, whose buffers would raise the RSS high-water mark
and read as growth. Afterwards ``--bursts`` bursts of ``--burst-size`` requests in one second
show whether memory taken by a peak is reused (no leak) or grows again.

    nice -n 10 .venv/bin/python benchmarks/soak.py --duration 1800 --rate 150 --json soak.json
    .venv/bin/python benchmarks/soak.py --duration 4 --window 2 --rate 20   # a quick check
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
KEY = "sk-soak-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _routes(path: Path, models: int, upstream: str) -> list[str]:
    names = [f"soak-{i:03d}" for i in range(models)]
    lines = ["models:"]
    for name in names:
        lines += [
            f"  - name: {name}",
            "    endpoints:",
            f"      - {{name: soak/{name}-a, weight: 300, urls: ['{upstream}']}}",
            f"      - {{name: soak/{name}-b, weight: 100, urls: ['{upstream}']}}",
        ]
    lines.append(f"apiKeys: {{soak: {KEY}}}")
    path.write_text("\n".join(lines) + "\n")
    return names


def _wait_ready(url: str, model: str, timeout: float = 120) -> None:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class Sampler(threading.Thread):
    """Records (seconds since start, RSS bytes, CPU seconds) of one process every ``period``."""

    def __init__(self, pid: int, period: float) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.period = period
        self.samples: list[tuple[float, int, float]] = []
        self.start_time = time.monotonic()
        self._halt = threading.Event()

    def sample(self) -> None:
        cpu = self.process.cpu_times()
        rss = self.process.memory_info().rss
        self.samples.append((time.monotonic() - self.start_time, rss, cpu.user + cpu.system))

    def run(self) -> None:
        while not self._halt.wait(self.period):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


def _loadgen(
    url: str, model: str, rate: float, duration: float, stream: bool, cap: int
) -> subprocess.Popen[str]:
    command = [sys.executable, str(HERE / "loadgen.py"), "--url", url, "--rate", f"{rate:g}", "--duration",
               f"{duration:g}", "--model", model, "--key", KEY, "--max-in-flight", str(cap)]  # fmt: skip
    return subprocess.Popen(command + (["--stream"] if stream else []), stdout=subprocess.PIPE, text=True)


def _collect(process: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = process.communicate()
    if process.returncode != 0 or not out.strip():
        return {"requests": 0, "errors": 0, "shed": 0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def soak(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    upstream_port, gateway_port = _free_port(), _free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    names = _routes(tmp / "routes.yaml", args.models, upstream)
    url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
    fake = subprocess.Popen([sys.executable, str(HERE / "fake_upstream.py"), "--port", str(upstream_port)])
    log = (tmp / "gateway.log").open("w")
    gateway = subprocess.Popen(
        [sys.executable, "-m", "modelyard", "gateway", "--routes", str(tmp / "routes.yaml"),
         "--host", "127.0.0.1", "--port", str(gateway_port), "--log-level", "WARNING"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    windows: list[dict[str, Any]] = []
    try:
        _wait_ready(url, names[0])
        sampler = Sampler(gateway.pid, args.sample)
        sampler.sample()
        sampler.start()
        started = time.monotonic()
        index = 0
        while (left := args.duration - (time.monotonic() - started)) > 0.5:
            length = min(args.window, left)
            plain_model, stream_model = names[(2 * index) % len(names)], names[(2 * index + 1) % len(names)]
            share = args.stream_share
            running = [
                (
                    False,
                    _loadgen(url, plain_model, args.rate * (1 - share), length, False, args.max_in_flight),
                ),
                (True, _loadgen(url, stream_model, args.rate * share, length, True, args.max_in_flight)),
            ]
            results = [(stream, _collect(p)) for stream, p in running]
            window: dict[str, Any] = {"t_end_s": round(time.monotonic() - started, 1)}
            for stream, r in results:
                kind = "stream" if stream else "plain"
                window[kind] = {k: round(r[k], 3) for k in ("requests", "errors", "shed", "p50_ms", "p99_ms")}
            windows.append(window)
            print(f"window {index:3d} t={window['t_end_s']:7.1f}s " + json.dumps(window), flush=True)
            index += 1
        elapsed = time.monotonic() - started
        sampler.stop()
        # Then bursts of --burst-size requests at once: RSS that rises with the first and not with
        # the next is a high-water mark of concurrency (memory kept for reuse), not a leak.
        bursts = []
        for _ in range(args.bursts):
            _collect(_loadgen(url, names[0], args.burst_size, 1, False, 0))
            time.sleep(2)
            bursts.append(round(sampler.process.memory_info().rss / 2**20, 2))
        if gateway.poll() is not None:
            raise RuntimeError(f"the gateway exited with {gateway.returncode}; see {tmp / 'gateway.log'}")
    finally:
        for process in (gateway, fake):
            process.terminate()
            process.wait(30)
        log.close()
    return _summary(args, sampler.samples, windows, elapsed, bursts)


def _summary(
    args: argparse.Namespace,
    samples: list[tuple[float, int, float]],
    windows: list[dict[str, Any]],
    elapsed: float,
    bursts: list[float],
) -> dict[str, Any]:
    warmup = min(args.warmup, args.duration / 3)
    after = [s for s in samples if s[0] >= warmup] or samples[-1:]
    base, end = after[0], samples[-1]
    sent = sum(w[k]["requests"] - w[k]["shed"] for w in windows for k in ("plain", "stream"))
    errors = sum(w[k]["errors"] for w in windows for k in ("plain", "stream"))
    shed = sum(w[k]["shed"] for w in windows for k in ("plain", "stream"))
    served = sent - errors
    growth = (end[1] - base[1]) / base[1] * 100
    return {
        "duration_s": round(elapsed, 1),
        "target_rate": args.rate,
        "achieved_rps": round(served / elapsed, 1),
        "models": args.models,
        "requests": served,
        "errors": errors,
        "shed": shed,
        "max_in_flight": args.max_in_flight,
        "rss_after_bursts_mib": bursts,
        "rss_start_mib": round(samples[0][1] / 2**20, 2),
        "rss_after_warmup_mib": round(base[1] / 2**20, 2),
        "warmup_s": round(base[0], 1),
        "rss_end_mib": round(end[1] / 2**20, 2),
        "rss_max_mib": round(max(s[1] for s in samples) / 2**20, 2),
        "rss_growth_pct": round(growth, 2),
        "gateway_cpu_s": round(end[2] - samples[0][2], 1),
        "p50_ms_median_window": {
            k: round(statistics.median(w[k]["p50_ms"] for w in windows), 2) for k in ("plain", "stream")
        },
        "p99_ms_worst_window": {
            k: round(max(w[k]["p99_ms"] for w in windows), 2) for k in ("plain", "stream")
        },
        "rss_samples": [(round(t, 1), round(rss / 2**20, 2)) for t, rss, _ in samples],
        "windows": windows,
    }


def _table(summary: dict[str, Any]) -> None:
    print(f"\n{'window end s':>12} {'plain n':>8} {'err':>4} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'stream n':>8} {'err':>4} {'p50 ms':>7} {'p99 ms':>7}")  # fmt: skip
    for w in summary["windows"]:
        p, s = w["plain"], w["stream"]
        cells = [
            f"{x['requests']:>8} {x['errors']:>4} {x['p50_ms']:>7.2f} {x['p99_ms']:>7.2f}" for x in (p, s)
        ]
        print(f"{w['t_end_s']:>12.1f} {cells[0]} | {cells[1]}")
    print(f"\nrequests served {summary['requests']} ({summary['achieved_rps']} req/s), "
          f"errors {summary['errors']}, shed {summary['shed']} (cap {summary['max_in_flight']})")  # fmt: skip
    print(f"gateway RSS: start {summary['rss_start_mib']} MiB, after warm-up ({summary['warmup_s']} s) "
          f"{summary['rss_after_warmup_mib']} MiB, end {summary['rss_end_mib']} MiB, "
          f"max {summary['rss_max_mib']} MiB: growth {summary['rss_growth_pct']} %")  # fmt: skip
    print(f"gateway CPU {summary['gateway_cpu_s']} s over {summary['duration_s']} s")
    print(f"RSS after each burst: {summary['rss_after_bursts_mib']} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=1800, help="seconds of load (default 1800)")
    parser.add_argument("--rate", type=float, default=150, help="requests/s in all (default 150)")
    parser.add_argument("--stream-share", type=float, default=0.5, help="share of streaming requests")
    parser.add_argument("--models", type=int, default=20, help="served names in the route table")
    parser.add_argument("--window", type=float, default=60, help="seconds per latency window")
    parser.add_argument("--sample", type=float, default=15, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=180, help="RSS baseline after this (≤ duration/3)")
    parser.add_argument("--max-growth", type=float, default=5.0, help="per cent; exit 1 above it")
    parser.add_argument("--max-in-flight", type=int, default=256, help="per load generator (0: no cap)")
    parser.add_argument("--bursts", type=int, default=2, help="bursts after the steady load (RSS reuse)")
    parser.add_argument("--burst-size", type=int, default=2000, help="requests sent within 1 s per burst")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    summary = soak(args)
    _table(summary)
    text = json.dumps(summary)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if summary["rss_growth_pct"] > args.max_growth else 0


if __name__ == "__main__":
    sys.exit(main())
