"""The gateway in front of a real ``modelyard runtime`` serving a tiny Llama the test builds:
``n`` and logprobs come back through it with the official client (``n`` over the runtime's
``--max-n`` a 400 naming it), and a /v1 path the gateway does not know reaches the runtime
(whose own 404 comes back, counted under the model)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests

from kit import free_port, wait_serving
from modelyard.gateway import app as gateway_app
from modelyard.gateway import discovery, routes

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.timeout(300)]


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[str]:
    from modelyard.local import tinymodels

    model = tinymodels.build_llama(tmp_path / "llama")
    port = free_port()
    log_path = tmp_path / "runtime.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelyard", "runtime", "--model", str(model), "--served-name", "tiny",
             "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--torch-threads", "1",
             "--max-n", "2"],
            stdout=log, stderr=log,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(process, f"{base}/ready", 240, lambda: log_path.read_text()[-3000:])
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_n_logprobs_and_unknown_paths_through_the_gateway(harness: Any, runtime: str) -> None:
    info = routes.EndpointInfo("ns/tiny", "tiny", targets=(discovery.pod_target("ns/tiny", runtime),))
    url, app = harness.gateway(discovery.StaticDiscovery(routes.build_table([info])))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=5, temperature=0,
        n=2, logprobs=True, top_logprobs=3, extra_body={"min_tokens": 5},
    )  # fmt: skip
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[0].message.content == reply.choices[1].message.content  # greedy
    assert all(len(c.logprobs.content) == 5 for c in reply.choices)
    assert reply.usage is not None and reply.usage.completion_tokens == 10

    with pytest.raises(openai.BadRequestError) as refused:  # over the runtime's --max-n 2
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], n=3)
    assert refused.value.body["param"] == "n" and "--max-n" in refused.value.body["message"]  # type: ignore[index]

    r = requests.post(f"{url}/v1/no-such-route", json={"model": "tiny"}, timeout=30)
    assert r.status_code == 404
    assert r.json()["error"]["code"] != "unknown_path"  # the runtime's answer, not the gateway's
    registry = app[gateway_app.METRICS].registry
    labels = {"model": "tiny", "endpoint": "ns/tiny", "code": "404"}
    assert registry.get_sample_value("modelyard_gateway_requests_total", labels) == 1
