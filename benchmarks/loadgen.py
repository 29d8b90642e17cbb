"""An open-loop load generator: N requests per second, latency from each request's scheduled time.

Run it in its own process (and core) so the proxy under test is the only thing measured.
Sending on a fixed schedule (not after the previous answer) avoids coordinated omission: a
slow answer shows up in the percentiles instead of slowing the load down. Prints one JSON line.

    python benchmarks/loadgen.py --url http://127.0.0.1:8000/v1/chat/completions --rate 500 --duration 10

``--bodies FILE`` sends the JSON bodies of FILE (one a line) in turn instead of one short chat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(
    url: str,
    rate: float,
    duration: float,
    stream: bool,
    model: str,
    key: str | None,
    max_in_flight: int = 0,
    bodies: list[bytes] | None = None,
) -> dict[str, float]:
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "hello there"}],
            "stream": stream,
            "max_tokens": 16,
        }
    ).encode()
    bodies = bodies or [body]
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    latencies: list[float] = []
    errors = shed = in_flight = 0
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(scheduled: float, body: bytes) -> None:
            nonlocal errors, in_flight
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            finally:
                in_flight -= 1
            if ok:
                latencies.append(time.perf_counter() - scheduled)
            else:
                errors += 1

        def send(scheduled: float, index: int = 0) -> asyncio.Future[None]:
            nonlocal in_flight
            in_flight += 1
            return asyncio.ensure_future(one(scheduled, bodies[index % len(bodies)]))

        # warm the connection pool
        await asyncio.gather(*(send(time.perf_counter()) for _ in range(20)))
        latencies.clear()
        total = int(rate * duration)
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if max_in_flight and in_flight >= max_in_flight:
                shed += 1  # not sent: the target is that far behind
                continue
            tasks.append(send(scheduled, i))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {
        "requests": total,
        "errors": errors,
        "shed": shed,
        "achieved_rps": total / elapsed,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p90_ms": _percentile(latencies, 0.90) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--model", default="bench")
    parser.add_argument("--key")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=0,
        help="skip (count as shed) sends beyond this many open (0: no cap)",
    )
    parser.add_argument(
        "--bodies", help="a file of JSON request bodies, one a line, sent in turn (default: one short chat)"
    )
    args = parser.parse_args()
    bodies = None
    if args.bodies:
        with open(args.bodies, "rb") as lines:
            bodies = [line.strip() for line in lines if line.strip()]
    result = asyncio.run(
        run(args.url, args.rate, args.duration, args.stream, args.model, args.key, args.max_in_flight, bodies)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
