"""Gateway CPU time per request, two checkouts interleaved: an A/B that a shared machine spoils
less than requests per second do.

For each round, each checkout's ``modelyard gateway --routes`` (started with its own
``PYTHONPATH``) gets ``wrk`` load (32 connections, a 2 s warm-up then ``--seconds``) against
``fake_upstream.py``, plain and streamed; the figure is the gateway process's user + system CPU
time over the requests wrk completed. Reported: the median over rounds and after / before.

    .venv/bin/python benchmarks/gateway_cpu_ab.py --before /work/main/operator --after operator
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(script: Path, seconds: int) -> int:
    url = "http://127.0.0.1:9302/v1/chat/completions"
    command = ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"errors under load:\n{out}")
    return int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="PYTHONPATH of the first checkout's package")
    parser.add_argument("--after", required=True, help="PYTHONPATH of the second")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-ab-"))
    routes = tmp / "routes.json"
    model = {"name": "bench", "endpoints": [{"urls": ["http://127.0.0.1:9301"]}]}
    routes.write_text(json.dumps({"models": [model], "apiKeys": {"k": "sk-bench"}}))
    scripts = {}
    for kind in ("plain", "stream"):
        body = {"model": "bench", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}
        scripts[kind] = tmp / f"{kind}.lua"
        payload = json.dumps({**body, "stream": kind == "stream"})
        scripts[kind].write_text(
            f'wrk.method = "POST"\nwrk.body = {json.dumps(payload)}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["Authorization"] = "Bearer sk-bench"\n'
        )
    fake = subprocess.Popen([sys.executable, str(HERE / "fake_upstream.py"), "--port", "9301"])
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for round_ in range(args.rounds):
            for side, path in (("before", args.before), ("after", args.after)):
                env = {**os.environ, "PYTHONPATH": str(Path(path).resolve())}
                command = [sys.executable, "-m", "modelyard", "gateway", "--routes", str(routes)]
                gateway = subprocess.Popen(
                    [*command, "--host", "127.0.0.1", "--port", "9302"], env=env, stderr=subprocess.DEVNULL
                )
                try:
                    for _ in range(150):
                        try:
                            urllib.request.urlopen("http://127.0.0.1:9302/readyz", timeout=1)
                            break
                        except OSError:
                            time.sleep(0.2)
                    for kind, script in scripts.items():
                        _wrk(script, 2)
                        started = _cpu_seconds(gateway.pid)
                        done = _wrk(script, args.seconds)
                        per = (_cpu_seconds(gateway.pid) - started) / done * 1e6
                        results.setdefault((side, kind), []).append(per)
                        print(f"round {round_} {side:<6} {kind:<6} {per:6.0f} us/request, n={done}")
                finally:
                    gateway.terminate()
                    gateway.wait(30)
    finally:
        fake.terminate()
        fake.wait(10)
    for kind in scripts:
        before = statistics.median(results[("before", kind)])
        after = statistics.median(results[("after", kind)])
        ratio = after / before
        print(f"{kind}: before {before:.0f} us, after {after:.0f} us (medians); after / before {ratio:.3f}")


if __name__ == "__main__":
    main()
