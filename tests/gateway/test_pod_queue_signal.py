"""The gateway reads the pods' own queue (the Inference Extension model-server protocol).

Real processes only: two ``modelyard runtime`` pods serving one name, and a ``modelyard
gateway`` in front of them. Pod A is kept busy by clients that reach it directly, not through
the gateway, so the gateway's own in-flight count says both pods are idle; only A's
``/metrics`` (``vllm:num_requests_running`` + ``vllm:num_requests_waiting``) tells. Every new
request through the gateway must go to B. The runtime's page is checked for the protocol's
names on the way, and a pod that does not answer counts as a scrape error.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import requests

from kit import Loop, Process, free_port, http_get, metric, wait_for, wait_serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

HANDLERS = pathlib.Path(__file__).resolve().parent.parent / "runtime"  # custom_handlers.SlowChat


def _runtime(model_dir: Path, port: int, log: Path) -> Process:
    env = {
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HANDLERS), os.environ.get("PYTHONPATH")])),
    }
    args = ["runtime", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    args += ["--model", str(model_dir), "--served-name", "slow"]
    args += ["--handler", "custom_handlers.SlowChat", "--no-warmup"]
    return Process(args, log, env)


def _wait(process: Process, url: str) -> None:
    assert process.process is not None
    wait_serving(process.process, url, 240, process.tail)


@pytest.fixture
def pods_and_gateway(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")  # SlowChat reads no weights
    port_a, port_b, port_gw, dead = free_port(), free_port(), free_port(), free_port()
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(
        "models:\n"
        "  - name: slow\n"
        f"    endpoints: [{{name: default/slow, urls: ['{a}', '{b}']}}]\n"
        "  - name: dead\n"
        f"    endpoints: [{{name: default/dead, urls: ['http://127.0.0.1:{dead}']}}]\n"
    )
    gateway = Process(
        ["gateway", "--routes", str(routes_file), "--no-auth", "--host", "127.0.0.1",
         "--port", str(port_gw), "--pod-metrics-interval", "0.2"],
        tmp_path / "gateway.log",
    )  # fmt: skip
    processes = [
        _runtime(model_dir, port_a, tmp_path / "a.log"),
        _runtime(model_dir, port_b, tmp_path / "b.log"),
        gateway,
    ]
    for process in processes:
        process.start()
    try:
        _wait(processes[0], f"{a}/ready")
        _wait(processes[1], f"{b}/ready")
        _wait(gateway, f"http://127.0.0.1:{port_gw}/readyz")
        yield a, b, f"http://127.0.0.1:{port_gw}"
    finally:
        for process in processes:
            process.stop()


def _metrics(base: str) -> str:
    status, text = http_get(f"{base}/metrics")
    assert status == 200, f"{base}/metrics answered {status}"
    return text


def test_new_requests_avoid_the_pod_that_reports_a_queue(pods_and_gateway: tuple[str, str, str]) -> None:
    a, b, gateway = pods_and_gateway
    page = _metrics(a)
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        assert f'{name}{{model_name="slow"}} 0.0' in page, f"{name} missing from the runtime's page"

    hello = [{"role": "user", "content": "hi"}]
    busy = {"model": "slow", "messages": hello, "max_tokens": 500, "stream": True}

    async def straight_to_a() -> None:  # 100 s of tokens, cancelled by the test
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{a}/v1/chat/completions", json=busy) as response,
        ):
            await response.read()

    loop = Loop()
    direct = [asyncio.run_coroutine_threadsafe(straight_to_a(), loop.loop) for _ in range(3)]
    try:
        wait_for(
            lambda: (
                metric(_metrics(a), "vllm:num_requests_running", model_name="slow") == 1
                and metric(_metrics(a), "vllm:num_requests_waiting", model_name="slow") == 2
            ),
            60,
            "pod A to report 1 running and 2 waiting",
        )
        key_a = "default/slow@" + a.removeprefix("http://")
        wait_for(
            lambda: metric(_metrics(gateway), "modelyard_gateway_pod_queue", target=key_a) == 3,
            30,
            "the gateway to read pod A's queue",
        )

        small = {"model": "slow", "messages": hello, "max_tokens": 1}
        for _ in range(6):
            answer = requests.post(f"{gateway}/v1/chat/completions", json=small, timeout=30)
            assert answer.status_code == 200, answer.text
        assert metric(_metrics(b), "modelyard_runtime_requests_total", model="slow") == 6
        assert metric(_metrics(a), "modelyard_runtime_requests_total", model="slow") == 0
    finally:
        for request in direct:
            request.cancel()
        loop.close()

    errors = "modelyard_gateway_pod_metrics_errors_total"
    wait_for(
        lambda: metric(_metrics(gateway), errors, endpoint="default/dead") >= 1,
        30,
        "the scrape of a pod that does not answer to count as an error",
    )
    gateway_page = _metrics(gateway)
    assert 'target="default/dead@' not in gateway_page  # unknown: no queue series
    key_b = "default/slow@" + b.removeprefix("http://")
    assert f'modelyard_gateway_pod_queue{{endpoint="default/slow",target="{key_b}"}}' in gateway_page
