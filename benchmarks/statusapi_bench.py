"""Status API benchmark (run by hand, not in CI): latency of the model list with 1000 entries.

    .venv/bin/python benchmarks/statusapi_bench.py [--entries 1000] [--requests 2000] [--concurrency 1]

The server (``statusapi.create_app`` over a View of ``--entries`` ModelEntries: the built-in
catalog's 23 copied with unique names, ids and served names) runs in a subprocess, so the
client does not share its interpreter. Measured, each after a warm-up:

* ``list``      GET /api/v1/registry/models (default page of 100)
* ``list-all``  GET /api/v1/registry/models?limit=1000
* ``filtered``  a rotation of filtered queries (category, tag, capability, q)
* ``detail``    GET /api/v1/registry/models/{id} over many ids
* ``cold``      the first list after a ModelEntry changed (the registry is rebuilt lazily)

Prints p50 / p90 / p99 / max in milliseconds for each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp

SERVER = r"""
import asyncio, sys
from aiohttp import web
from modelyard import statusapi
from modelyard.registry import catalog, manifests

count = int(sys.argv[1])
base = manifests.load_entries(catalog.BUILTIN_CATALOG)
objects = []
for i in range(count):
    entry = base[i % len(base)].to_wire()
    spec = dict(entry["spec"])
    repo = spec["source"].get("repo") or entry["metadata"]["name"]
    spec["source"] = {**spec["source"], "repo": f"{repo}-{i}"}
    spec["servedName"] = f"{repo}-{i}"
    objects.append({**entry, "metadata": {"name": f"{entry['metadata']['name']}-{i}"}, "spec": spec})
cache = statusapi.Cache(objects)

async def touch(request):
    # Change one entry (a new description): the next list rebuilds the registry.
    obj = dict(cache.objects("ModelEntry")[0])
    obj["spec"] = {**obj["spec"], "description": f"changed {cache.version}"}
    cache.upsert(obj)
    return web.json_response({"version": cache.version})

app = statusapi.create_app(statusapi.StatusApiSettings(), cache)
app.router.add_post("/bench/touch", touch)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
"""


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"n={len(ordered):5d}  p50 {pick(0.50):7.2f}  p90 {pick(0.90):7.2f}  "
        f"p99 {pick(0.99):7.2f}  max {ordered[-1] * 1000:7.2f}  "
        f"(ms; mean {statistics.mean(ordered) * 1000:.2f})"
    )


async def _timed(session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with session.get(url) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
    return time.perf_counter() - started


async def _run(urls: list[str], concurrency: int, session: aiohttp.ClientSession) -> list[float]:
    samples: list[float] = []
    queue = list(reversed(urls))

    async def worker() -> None:
        while queue:
            samples.append(await _timed(session, queue.pop()))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples


async def bench(args: argparse.Namespace, base: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        for _ in range(100):  # up, and warm
            try:
                await _timed(session, base + "/api/v1/healthz")
                break
            except (aiohttp.ClientError, RuntimeError):
                await asyncio.sleep(0.2)
        async with session.get(base + "/api/v1/registry/models?limit=1") as response:
            total = (await response.json())["total"]
        print(f"server up with {total} entries", flush=True)
        n = args.requests
        filters = [
            "category=text-llm", "tag=quantized", "capability=training", "q=whisper",
            "category=speech&lifecycle=stable", "category=embedding&q=qwen",
        ]  # fmt: skip
        ids = []
        async with session.get(base + "/api/v1/registry/models?limit=1000") as response:
            ids = [m["id"] for m in (await response.json())["data"]]
        plans = {
            "list": [base + "/api/v1/registry/models"] * n,
            "list-all": [base + "/api/v1/registry/models?limit=1000"] * max(n // 4, 50),
            "filtered": [base + "/api/v1/registry/models?" + filters[i % len(filters)] for i in range(n)],
            "detail": [base + "/api/v1/registry/models/" + ids[(i * 37) % len(ids)] for i in range(n)],
        }
        for name, urls in plans.items():
            await _run(urls[:50], args.concurrency, session)  # warm-up
            results[name] = await _run(urls, args.concurrency, session)
            print(f"{name:9s} {_percentiles(results[name])}", flush=True)
        cold = []
        for _ in range(args.cold):
            async with session.post(base + "/bench/touch") as response:
                await response.read()
            cold.append(await _timed(session, base + "/api/v1/registry/models"))
        results["cold"] = cold
        print(f"{'cold':9s} {_percentiles(cold)}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--cold", type=int, default=30, help="list requests right after an entry changed")
    parser.add_argument("--port", type=int, default=18731)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(args.entries), str(args.port)], env=env)
    try:
        print(f"{args.entries} entries, {args.requests} requests, concurrency {args.concurrency}")
        asyncio.run(bench(args, f"http://127.0.0.1:{args.port}"))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
