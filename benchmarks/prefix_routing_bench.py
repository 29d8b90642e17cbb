"""Prefix-aware routing benchmark (run by hand; CI runs it in a tiny mode): LeastBusy against
PrefixHash, side by side in one run.

    .venv/bin/python benchmarks/prefix_routing_bench.py [--quick]

1. **Multi-tenant chat.** ``--tenants`` (8) system prompts of ~``--system-tokens`` (2000)
   tokens, each shared by ``--users`` users who ask their own question, streamed
   ``--concurrency`` at a time in a seeded random order, through ``modelyard gateway --routes``
   to 3 ``modelyard runtime`` replicas of the tiny Llama the tests build (transformers engine,
   prefix cache on). Two gateway processes front the same three replicas, one with the
   endpoint's ``routing.strategy: LeastBusy``, one with ``PrefixHash`` (a gateway's routes file
   is read once), measured in alternating rounds; each round has system prompts of its own, so
   what an earlier round left in the caches helps no one. Per strategy: time to first token
   p50/p95 (client side) and the prefix-cache hit rate summed over the replicas (requests that
   reused a cached prefix, and prompt tokens served from cache: ``modelyard_runtime_prefix_cache_*``
   and ``vllm:prefix_cache_*`` on each replica's ``/metrics``).

   Each replica's prefix cache holds ``--cache-prompts`` (3) system prompts
   (``--prefix-cache-bytes``), fewer than the tenants: a production pod's cache holds far more
   prompts, but it also serves far more tenants. With LeastBusy every replica sees every tenant,
   and their prompts evict each other; with PrefixHash each replica sees its share.

2. **Gateway cost.** In this process, the gateway's own work per request under each strategy
   (read the body, compute the key when PrefixHash, pick the pod; mean microseconds over
   ``--decisions`` requests, median of 3). Then the gateway, once per strategy, in front of a fast
   fake model server
   (``fake_upstream.py``, 3 processes = 3 pods), against that server directly: latency at
   ``--rate`` (500) requests/s, open loop (``loadgen.py``), bodies with the same system prompts
   (so PrefixHash reads and hashes a real prefix); the *added* p50/p99 over the direct path,
   median of ``--repeat`` runs, alternating targets. Gateway pinned to one core, the rest to the
   other (``--proxy-core``/``--load-core``), as in ``gateway_bench.py``. A target that cannot keep
   up with the rate (fewer than 95% of the requests/s, or errors) is marked saturated: its
   latency is a queue's, not the gateway's cost.

The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import gateway_bench
import runtime_bench

HERE = Path(__file__).resolve().parent
KEY = gateway_bench.KEY
STRATEGIES = ("LeastBusy", "PrefixHash")


def tenant_prompt(tokens: int, seed: int, tokenizer: Any = None) -> str:
    """A system prompt that differs from other seeds' from its first word: ``tokens`` tokens of
    ``tokenizer``, or ~4 characters a token (a real model's tokenizer) without one."""
    rng = random.Random(seed)
    words = [f"Tenant {seed}."]
    while sum(len(w) + 1 for w in words) < tokens * 4:
        words.append(rng.choice(runtime_bench.WORDS))
    text = " ".join(words)
    if tokenizer is None:
        return text
    offsets = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    return text[: offsets[min(tokens, len(offsets)) - 1][1]]


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready")


@contextlib.contextmanager
def processes(commands: list[tuple[list[str], str]], log: Path) -> Iterator[None]:
    """Start every command at once (each with the URL that answers when it is ready), wait for all."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = []
    with log.open("ab") as out:
        try:
            for command, _ in commands:
                started.append(subprocess.Popen(command, stdout=out, stderr=out, env=env))
            for (_, ready), process in zip(commands, started, strict=True):
                _wait(ready, process)
            yield
        finally:
            for process in started:
                process.terminate()
            for process in started:
                process.wait(30)


def gateway(
    routes: Path, port: int, core: str | None = None, pod_metrics_interval: float | None = None
) -> tuple[list[str], str]:
    command = [sys.executable, "-m", "modelyard", "gateway", "--routes", str(routes), "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "WARNING"]  # fmt: skip
    if pod_metrics_interval is not None:
        command += ["--pod-metrics-interval", str(pod_metrics_interval)]
    return gateway_bench._pinned(core, command), f"http://127.0.0.1:{port}/readyz"


def routes_file(path: Path, strategy: str, urls: list[str], prefix_chars: int) -> Path:
    routing = f"{{strategy: {strategy}, prefixCharLength: {prefix_chars}}}"
    listed = ", ".join(f"'{u}'" for u in urls)
    endpoint = f"{{name: bench/m, urls: [{listed}], routing: {routing}}}"
    path.write_text(f"models:\n  - name: m\n    endpoints:\n      - {endpoint}\napiKeys: {{bench: {KEY}}}\n")
    return path


def _replica_stats(urls: list[str]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for url in urls:
        for name, value in runtime_bench.scrape(url).items():
            if "prefix_cache" in name:
                totals[name] = totals.get(name, 0.0) + value
    return totals


async def chat_round(
    gateway_url: str, prompts: list[str], users: int, concurrency: int, seed: int
) -> list[float]:
    """TTFTs (s) of every tenant's users, in a seeded random order, ``concurrency`` at a time."""
    order = [(t, u) for t in range(len(prompts)) for u in range(users)]
    random.Random(seed).shuffle(order)
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for item in order:
        queue.put_nowait(item)
    ttfts: list[float] = []
    headers = {"Authorization": f"Bearer {KEY}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            tenant, user = queue.get_nowait()
            words = " ".join(runtime_bench.WORDS[(user * 3 + k) % len(runtime_bench.WORDS)] for k in range(6))
            messages = [
                {"role": "system", "content": prompts[tenant]},
                {"role": "user", "content": f"user {user}: {words}?"},
            ]
            ttft, _, _ = await runtime_bench.stream_once(session, gateway_url, 4, messages)
            ttfts.append(ttft)

    async with aiohttp.ClientSession(headers=headers) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return ttfts


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def chat_section(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, float]]:
    from modelyard.local import tinymodels

    llama = str(tinymodels.build_llama(tmp / "llama"))
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(llama)  # ~1.8 characters a token
    config = json.loads((tmp / "llama" / "config.json").read_text())
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    per_token = 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * head_dim * 4  # float32
    cache = int(args.cache_prompts * (args.system_tokens + 64) * per_token)
    ports = [gateway_bench._free_port() for _ in range(3)]
    replicas = [f"http://127.0.0.1:{p}" for p in ports]
    commands = []
    for port in ports:
        command = [sys.executable, "-m", "modelyard", "runtime", "--model", llama, "--served-name", "m",
                   "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "WARNING",
                   "--torch-threads", "1", "--prefix-cache-bytes", str(cache)]  # fmt: skip
        commands.append((command, f"http://127.0.0.1:{port}/ready"))
    gateways = {}
    for strategy in STRATEGIES:
        port = gateway_bench._free_port()
        path = routes_file(tmp / f"chat-{strategy}.yaml", strategy, replicas, args.prefix_chars)
        commands.append(gateway(path, port, pod_metrics_interval=args.pod_metrics_interval))
        gateways[strategy] = f"http://127.0.0.1:{port}"
    print(
        f"multi-tenant chat: {args.tenants} system prompts of ~{args.system_tokens} tokens "
        f"x {args.users} users, "
        f"{args.concurrency} streams at a time, 3 replicas (prefix cache {cache / 2**20:.1f} MiB each, "
        f"~{args.cache_prompts:g} prompts), {args.rounds} round(s) per strategy",
        flush=True,
    )
    tenants = range(args.tenants)
    ttfts: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    counts: dict[str, dict[str, float]] = {s: {} for s in STRATEGIES}
    with processes(commands, tmp / "chat.log"):
        for round_ in range(args.rounds):
            for index, strategy in enumerate(STRATEGIES):
                seed = 1000 * (round_ * len(STRATEGIES) + index + 1)
                prompts = [tenant_prompt(args.system_tokens, seed + t, tokenizer) for t in tenants]
                before = _replica_stats(replicas)
                ttfts[strategy] += asyncio.run(
                    chat_round(gateways[strategy], prompts, args.users, args.concurrency, seed)
                )
                after = _replica_stats(replicas)
                for name, value in after.items():
                    counts[strategy][name] = counts[strategy].get(name, 0.0) + value - before.get(name, 0.0)
    results = {}
    for strategy in STRATEGIES:
        c = counts[strategy]
        hits, misses = (
            c.get("modelyard_runtime_prefix_cache_hits_total", 0),
            c.get("modelyard_runtime_prefix_cache_misses_total", 0),
        )
        results[strategy] = {
            "requests": len(ttfts[strategy]),
            "ttft_p50_ms": statistics.median(ttfts[strategy]) * 1000,
            "ttft_p95_ms": _percentile(ttfts[strategy], 0.95) * 1000,
            "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
            "token_hit_rate": c.get("vllm:prefix_cache_hits_total", 0)
            / max(c.get("vllm:prefix_cache_queries_total", 0), 1),
        }
    for strategy, r in results.items():
        print(
            f"  {strategy:<11} TTFT p50 {r['ttft_p50_ms']:7.1f} ms, p95 {r['ttft_p95_ms']:7.1f} ms; "
            f"prefix cache hits {r['hit_rate']:4.0%} of requests, "
            f"{r['token_hit_rate']:4.0%} of prompt tokens",
            flush=True,
        )
    return results


def _loadgen(url: str, bodies: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, str(HERE / "loadgen.py"), "--url", url, "--rate", str(args.rate),
               "--duration", str(args.duration), "--key", KEY, "--bodies", str(bodies)]  # fmt: skip
    done = subprocess.run(
        gateway_bench._pinned(args.load_core, command), capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def decision_cost(lines: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Mean microseconds of the gateway's per-request work under each strategy, in this process."""
    from modelyard.gateway import balancer, body, discovery, proxy, routes

    raws = [line.encode() for line in lines]
    costs: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    for _ in range(3):
        for strategy in STRATEGIES:
            routing = routes.Routing(strategy, args.prefix_chars)
            pods = tuple(discovery.pod_target("bench/m", f"http://10.0.0.{i}:8000") for i in range(3))
            model = routes.build_table(
                [routes.EndpointInfo("bench/m", "m", targets=pods, routing=routing)]
            ).get("m")
            assert model is not None
            chooser = balancer.WeightedLeastBusy()
            began = time.perf_counter()
            for i in range(args.decisions):
                parsed = body.parse(raws[i % len(raws)], "application/json")
                affinity = model.affinity
                request = argparse.Namespace(headers={})
                exchange = argparse.Namespace(body=parsed, request=request)
                key = proxy.affinity_key(exchange, affinity) if affinity is not None else None  # type: ignore[arg-type]
                choice = chooser.choose(model, (), key)
                assert choice is not None and choice[1] is not None
                chooser.started(choice[1])
                chooser.finished(choice[1], ok=True)
            costs[strategy].append((time.perf_counter() - began) / args.decisions * 1e6)
    return {s: statistics.median(v) for s, v in costs.items()}


def latency_section(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, float]]:
    bodies = tmp / "bodies.jsonl"
    prompts = [tenant_prompt(args.system_tokens, 7 + t) for t in range(args.tenants)]
    lines = []
    for i in range(args.tenants * 16):
        messages = [
            {"role": "system", "content": prompts[i % args.tenants]},
            {"role": "user", "content": f"user {i}: hello there?"},
        ]
        lines.append(json.dumps({"model": "m", "messages": messages, "max_tokens": 16}))
    bodies.write_text("\n".join(lines) + "\n")
    size = sum(len(line) for line in lines) // len(lines)
    cost = decision_cost(lines, args)
    print(
        f"gateway work per request (body of ~{size // 1024} KiB read, key, pick): "
        + ", ".join(f"{s} {us:.1f} us" for s, us in cost.items()),
        flush=True,
    )
    ports = [gateway_bench._free_port() for _ in range(3)]
    fakes = [f"http://127.0.0.1:{p}" for p in ports]
    commands = [
        (
            gateway_bench._pinned(
                args.load_core, [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(p)]
            ),
            f"http://127.0.0.1:{p}/",
        )
        for p in ports
    ]
    urls = {"direct": f"{fakes[0]}/v1/chat/completions"}
    for strategy in STRATEGIES:
        port = gateway_bench._free_port()
        path = routes_file(tmp / f"fake-{strategy}.yaml", strategy, fakes, args.prefix_chars)
        commands.append(gateway(path, port, args.proxy_core))
        urls[strategy] = f"http://127.0.0.1:{port}/v1/chat/completions"
    print(
        f"gateway latency: {args.rate:g} req/s for {args.duration:g} s, bodies of ~{size // 1024} KiB, "
        f"3 fake pods, median of {args.repeat}",
        flush=True,
    )
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
    with processes(commands, tmp / "latency.log"):
        for url in urls.values():  # warm-up: connections, caches, the ring
            args_warm = argparse.Namespace(**{**vars(args), "duration": 1, "rate": min(args.rate, 100)})
            _loadgen(url, bodies, args_warm)
        for _ in range(args.repeat):
            for name, url in urls.items():
                runs[name].append(_loadgen(url, bodies, args))
    results = {
        name: {k: statistics.median(run[k] for run in found) for k in found[0]}
        for name, found in runs.items()
    }
    direct = results["direct"]
    for r in results.values():
        r["saturated"] = float(r["achieved_rps"] < 0.95 * args.rate or r["errors"] > 0)
    for name in STRATEGIES:
        results[name]["added_p50_ms"] = results[name]["p50_ms"] - direct["p50_ms"]
        results[name]["added_p99_ms"] = results[name]["p99_ms"] - direct["p99_ms"]
        results[name]["work_us"] = cost[name]
    for name, r in results.items():
        added = (
            f", added p50 {r['added_p50_ms']:.2f} ms, p99 {r['added_p99_ms']:.2f} ms"
            if name != "direct"
            else ""
        )
        print(
            f"  {name:<11} p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
            f"{r['achieved_rps']:.0f} req/s, {r['errors']:.0f} errors{added}"
            + (" (SATURATED: a queue, not the gateway's cost)" if r["saturated"] else ""),
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer users, rounds and seconds")
    parser.add_argument("--tenants", type=int, default=8, help="distinct system prompts")
    parser.add_argument(
        "--users", type=int, default=None, help="users per tenant per round (default 12; quick 6)"
    )
    parser.add_argument("--system-tokens", type=int, default=2000, help="system prompt length")
    parser.add_argument(
        "--cache-prompts", type=float, default=3, help="system prompts one replica's cache holds"
    )
    parser.add_argument("--prefix-chars", type=int, default=512, help="routing.prefixCharLength")
    parser.add_argument("--concurrency", type=int, default=6, help="streams at a time")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per strategy (default 2; quick 1)")
    parser.add_argument("--rate", type=float, default=500, help="requests/s for the gateway cost")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per latency run (default 10; quick 4)"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="latency runs per target (default 3; quick 1)"
    )
    parser.add_argument("--decisions", type=int, default=20000, help="requests for the in-process cost")
    parser.add_argument(
        "--pod-metrics-interval",
        type=float,
        default=None,
        help="the chat gateways' --pod-metrics-interval (default: the gateway's, 1 s; 0: off, the "
        "gateways weigh pods by their own in-flight requests only)",
    )
    parser.add_argument("--skip-chat", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--proxy-core", default="0")
    parser.add_argument("--load-core", default="1")
    args = parser.parse_args()
    args.users = args.users or (6 if args.quick else 12)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.duration = args.duration or (4 if args.quick else 10)
    args.repeat = args.repeat or (1 if args.quick else 3)
    began = time.monotonic()
    summary: dict[str, Any] = {"args": vars(args), "load": [list(os.getloadavg())]}
    with tempfile.TemporaryDirectory(prefix="prefix-bench-") as name:
        tmp = Path(name)
        if not args.skip_chat:
            summary["chat"] = chat_section(args, tmp)
            summary["load"].append(list(os.getloadavg()))
        if not args.skip_latency:
            summary["latency"] = latency_section(args, tmp)
            summary["load"].append(list(os.getloadavg()))
    summary["seconds"] = time.monotonic() - began
    print(f"load average (1, 5, 15 min): {summary['load']}; {summary['seconds']:.0f} s in all")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
