"""A runtime process SIGKILLed mid-stream: the gateway resumes the answer on the other one, and
greedy decoding makes the resumed text the same, token for token, as an uninterrupted run.

Real processes: ``modelyard gateway --routes FILE`` in front of two ``modelyard runtime``
processes (one endpoint, two targets) serving the tiny Llama, taught one long reply so that
its greedy answer is plain text (the untaught model writes byte tokens whose decoded text
cannot be tokenised back). Each runtime sleeps a little after every token
(``custom_handlers.SlowTextChat``) so the stream is still running when the test kills the
process that serves it.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kit import Process, free_port, http_get, metric, wait_serving
from modelyard.local import tinymodels

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RUNTIME_TESTS = pathlib.Path(__file__).parent.parent / "runtime"
QUESTION = "tell me a story"
REPLY = (
    "the quick brown fox jumps over the lazy dog and then it runs far away into the green hills "
    "where the old farmer keeps his sheep, and nobody sees it again until the spring comes back"
)


@pytest.fixture(scope="module")
def taught_llama(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("taught") / "llama"
    tinymodels.build_llama(path)
    return tinymodels.teach_replies(path, [(QUESTION, REPLY)])


@pytest.fixture()
def servers(taught_llama: pathlib.Path, tmp_path: pathlib.Path) -> Iterator[tuple[str, dict[str, Process]]]:
    env = {
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "SLOW_TOKEN_SECONDS": "0.03",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(RUNTIME_TESTS), os.environ.get("PYTHONPATH")])),
    }
    runtimes: dict[str, Process] = {}
    for name in ("a", "b"):
        port = free_port()
        runtimes[f"http://127.0.0.1:{port}"] = Process(
            ["runtime", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
             "--model", str(taught_llama), "--served-name", "tiny", "--no-warmup",
             "--handler", "custom_handlers.SlowTextChat"],
            tmp_path / f"runtime-{name}.log",
            env,
        )  # fmt: skip
    routes = tmp_path / "routes.yaml"
    urls = ", ".join(f'"{url}"' for url in runtimes)
    routes.write_text(
        f"models:\n  - name: tiny\n    endpoints:\n      - name: default/tiny\n        urls: [{urls}]\n"
    )
    port = free_port()
    gateway = Process(
        ["gateway", "--routes", str(routes), "--host", "127.0.0.1", "--port", str(port), "--no-auth"],
        tmp_path / "gateway.log",
    )
    try:
        for process in [*runtimes.values(), gateway]:
            process.start()
        for url, process in runtimes.items():
            assert process.process is not None
            wait_serving(process.process, f"{url}/ready", 300, process.tail)
        assert gateway.process is not None
        wait_serving(gateway.process, f"http://127.0.0.1:{port}/readyz", 60, gateway.tail)
        yield f"http://127.0.0.1:{port}", runtimes
    finally:
        for process in [gateway, *runtimes.values()]:
            process.stop()


def _body(stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "tiny",
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 300,
        "temperature": 0,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _busy(url: str) -> bool:
    status, text = http_get(f"{url}/metrics")
    return status == 200 and metric(text, "modelyard_runtime_queue_depth") > 0


def test_a_killed_runtime_s_stream_resumes_with_the_same_greedy_tokens(
    servers: tuple[str, dict[str, Process]], taught_llama: pathlib.Path
) -> None:
    from transformers import AutoTokenizer

    gateway, runtimes = servers
    events: list[dict[str, Any]] = []
    raw_events: list[str] = []
    killed = ""
    with requests.post(
        f"{gateway}/v1/chat/completions", json=_body(True), stream=True, timeout=120
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines(decode_unicode=True):
            if not line.startswith("data: "):
                continue
            raw_events.append(line[6:])
            if line == "data: [DONE]":
                continue
            events.append(json.loads(line[6:]))
            pieces = sum(1 for e in events for c in e.get("choices") or [] if c["delta"].get("content"))
            if pieces == 10 and not killed:
                killed = next(url for url in runtimes if _busy(url))
                process = runtimes[killed].process
                assert process is not None
                os.kill(process.pid, signal.SIGKILL)
    assert killed, "the stream ended before a runtime could be killed"
    assert raw_events.count("[DONE]") == 1 and raw_events[-1] == "[DONE]"
    assert not any("error" in e for e in events), events[-3:]
    assert len({(e["id"], e["created"], e["model"]) for e in events}) == 1
    assert [c["delta"].get("role") for e in events for c in e["choices"] if c["delta"].get("role")] == [
        "assistant"
    ]
    finishes = [c["finish_reason"] for e in events for c in e["choices"] if c.get("finish_reason")]
    resumed = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])

    survivor = next(url for url in runtimes if url != killed)
    whole = requests.post(f"{survivor}/v1/chat/completions", json=_body(False), timeout=120).json()
    reference = whole["choices"][0]["message"]["content"]
    tokenizer = AutoTokenizer.from_pretrained(taught_llama)
    ids = tokenizer(resumed, add_special_tokens=False)["input_ids"]
    expected = tokenizer(reference, add_special_tokens=False)["input_ids"]
    first_difference = next((i for i, (a, b) in enumerate(zip(ids, expected, strict=False)) if a != b), None)
    assert ids == expected, f"differs at token {first_difference}: {resumed!r} vs {reference!r}"
    assert finishes == [whole["choices"][0]["finish_reason"]]
    usage = events[-1]["usage"]
    assert usage["total_tokens"] == whole["usage"]["total_tokens"]

    _, text = http_get(f"{gateway}/metrics")
    assert metric(text, "modelyard_gateway_stream_resumptions_total", outcome="resumed") == 1
