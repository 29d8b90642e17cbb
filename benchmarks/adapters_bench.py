"""Live adapters benchmark (issue #20; run by hand, not in CI).

    .venv/bin/python benchmarks/adapters_bench.py [--rounds 3] [--streams 16] [--quick]

On the tiny Llama the tests build, with random rank-8 LoRA adapters over it:

1. **Load vs restart.** Time from ``POST /v1/load_lora_adapter`` to the adapter's first answer
   in a running runtime, against starting a runtime with the adapter merged in (``--lora``, what
   serving an adapter took before) from process start to its first answer.
2. **Mixed adapters.** Tokens/s of ``--streams`` concurrent requests (greedy, ``ignore_eos``,
   ``--tokens`` each) spread round-robin over 1, 4 and 8 adapters on one base, against the
   same streams on the base alone: with no adapter loaded (the plain model) and with 8 loaded
   but unused (peft's wrapping alone). Each round runs every case once, in turn (medians).

Servers are subprocesses; torch uses one intra-op thread (``--torch-threads 1``) as in
runtime_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import aiohttp

from modelyard.local import tinymodels


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_adapters(base: pathlib.Path, root: pathlib.Path, count: int) -> list[pathlib.Path]:
    import peft
    import torch
    import transformers

    out = []
    for i in range(count):
        torch.manual_seed(100 + i)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(base))
        config = peft.LoraConfig(
            r=8,
            lora_alpha=16,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            init_lora_weights=False,
        )
        path = root / f"adapter-{i}"
        peft.get_peft_model(model, config).save_pretrained(str(path))
        out.append(path)
    return out


class Runtime:
    def __init__(self, model: pathlib.Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "modelyard", "runtime", "--model", str(model), "--served-name", "base"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", "--log-level", "WARNING"]
        cmd += ["--torch-threads", "1", "--max-adapters", "8", *extra]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"})

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"runtime exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError("runtime not ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with session.post(url, json=body) as r:
        data: dict[str, Any] = await r.json()
        if r.status != 200:
            raise RuntimeError(f"{url}: {r.status} {data}")
        return data


def _chat(model: str, tokens: int, prompt: str = "hello there") -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "ignore_eos": True,
        "temperature": 0,
    }


async def first_answer_after_load(url: str, name: str, path: pathlib.Path) -> float:
    async with aiohttp.ClientSession() as s:
        began = time.perf_counter()
        await _post(s, url + "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
        await _post(s, url + "/v1/chat/completions", _chat(name, 1))
        return time.perf_counter() - began


async def unload(url: str, name: str) -> None:
    async with aiohttp.ClientSession() as s:
        await _post(s, url + "/v1/unload_lora_adapter", {"lora_name": name})


def start_to_first_answer(model: pathlib.Path, adapter: pathlib.Path) -> float:
    rt = Runtime(model, "--lora", f"merged={adapter}", "--no-warmup")
    try:
        rt.wait_ready()
        body = _chat("merged", 1)
        request = urllib.request.Request(
            rt.url + "/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as r:
            r.read()
        return time.perf_counter() - rt.started
    finally:
        rt.stop()


async def throughput(url: str, models: list[str], streams: int, tokens: int) -> float:
    """Generated tokens per second of ``streams`` concurrent requests, model i % len(models)."""
    connector = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(connector=connector) as s:
        await asyncio.gather(*(_post(s, url + "/v1/chat/completions", _chat(m, 2)) for m in models))
        began = time.perf_counter()
        answers = await asyncio.gather(
            *(
                _post(
                    s,
                    url + "/v1/chat/completions",
                    _chat(models[i % len(models)], tokens, f"user {i} says hi"),
                )
                for i in range(streams)
            )
        )
        elapsed = time.perf_counter() - began
    return sum(a["usage"]["completion_tokens"] for a in answers) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="1 round, 8 streams, 32 tokens")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.streams, args.tokens = 1, 8, 32
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        model = tinymodels.build_llama(root / "llama")
        adapters = make_adapters(model, root, 8)
        names = [f"a{i}" for i in range(8)]

        restart = [start_to_first_answer(model, adapters[0]) for _ in range(args.rounds)]
        rt = Runtime(model, "--no-warmup")
        rt.wait_ready()
        try:
            live: list[float] = []
            cases: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                cases.setdefault("base alone (no adapter loaded)", []).append(
                    asyncio.run(throughput(rt.url, ["base"], args.streams, args.tokens))
                )
                live += [
                    asyncio.run(first_answer_after_load(rt.url, n, p))
                    for n, p in zip(names, adapters, strict=True)
                ]
                for label, models in (
                    ("base, 8 adapters loaded, unused", ["base"]),
                    ("1 adapter", names[:1]),
                    ("4 adapters mixed", names[:4]),
                    ("8 adapters mixed", names),
                    ("base + 8 adapters mixed", ["base", *names]),
                ):
                    cases.setdefault(label, []).append(
                        asyncio.run(throughput(rt.url, models, args.streams, args.tokens))
                    )
                for name in names:
                    asyncio.run(unload(rt.url, name))
        finally:
            rt.stop()
    print(f"load average at end: {os.getloadavg()}")
    print("serving an adapter: tiny Llama, rank-8 LoRA on q/k/v/o")
    for label, values, what in (
        ("load into a running runtime, to its first answer", live, "loads"),
        ("start a runtime with --lora (merged), to its first answer", restart, "starts"),
    ):
        p50, top = statistics.median(values) * 1000, max(values) * 1000
        print(f"  {label:58s} p50 {p50:8.1f} ms (max {top:.1f}, {len(values)} {what})")
    shape = f"{args.streams} concurrent requests x {args.tokens} tokens"
    print(f"throughput: {shape}, medians of {args.rounds} round(s)")
    alone = statistics.median(cases["base alone (no adapter loaded)"])
    for label, values in cases.items():
        value = statistics.median(values)
        print(f"  {label:34s} {value:8.0f} tokens/s ({value / alone:.2f}x)")


if __name__ == "__main__":
    main()
