"""The gateway runs on uvloop when it is installed (``--event-loop``), with every feature on."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
import uvloop

from kit import free_port, http_get, wait_for, wait_serving
from modelyard import eventloop
from modelyard.gateway import cli

ROUTES = """
models:
  - name: llama
    endpoints:
      - {{name: default/llama-a, weight: 300, urls: ["{a}"]}}
      - {{name: default/llama-b, weight: 100, urls: ["{b}"]}}
  - name: flaky
    endpoints:
      - {{name: default/flaky, urls: ["{broken}", "{c}"]}}
apiKeys:
  alice: sk-alice
"""


def test_the_flag_wins_over_the_environment_and_auto_is_the_default() -> None:
    assert eventloop.resolve(None, None, cli.EVENT_LOOP_ENV) == "auto"
    assert eventloop.resolve(None, " ", cli.EVENT_LOOP_ENV) == "auto"
    assert eventloop.resolve(None, "asyncio", cli.EVENT_LOOP_ENV) == "asyncio"
    assert eventloop.resolve("uvloop", "asyncio", cli.EVENT_LOOP_ENV) == "uvloop"
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    assert parser.parse_args(["--event-loop", "asyncio"]).event_loop == "asyncio"


def test_an_unknown_choice_names_the_setting_and_the_choices() -> None:
    allowed = r"GATEWAY_EVENT_LOOP must be one of auto, uvloop, asyncio, not 'trio'"
    with pytest.raises(ValueError, match=allowed):
        eventloop.resolve(None, "trio", cli.EVENT_LOOP_ENV)
    with pytest.raises(ValueError, match=r"--event-loop must be one of"):
        eventloop.resolve("libuv", None, cli.EVENT_LOOP_ENV)


@pytest.mark.parametrize(
    ("choice", "kind"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
def test_uvloop_is_used_when_installed_unless_turned_off(choice: str, kind: str) -> None:
    loop, named = eventloop.new_loop(choice)
    try:
        assert named == kind
        assert isinstance(loop, uvloop.Loop) == (kind == "uvloop")
        assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
    finally:
        loop.close()


def test_without_uvloop_auto_falls_back_and_uvloop_refuses(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` now raises ImportError
    loop, named = eventloop.new_loop("auto")
    loop.close()
    assert named == "asyncio" and not isinstance(loop, uvloop.Loop)
    with pytest.raises(eventloop.Unavailable, match=r"uvloop is not installed.*--event-loop asyncio"):
        eventloop.new_loop("uvloop")


def test_a_bad_environment_value_stops_the_gateway_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    nowhere = "http://127.0.0.1:1"
    path.write_text(ROUTES.format(a=nowhere, b=nowhere, broken=nowhere, c=nowhere))
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", "gateway", "--routes", str(path), "--port", str(free_port())],
        env={**_env(), "GATEWAY_EVENT_LOOP": "fast"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "GATEWAY_EVENT_LOOP must be one of auto, uvloop, asyncio, not 'fast'" in done.stderr


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_every_feature_stays_on_whatever_the_loop(tmp_path: Path, harness: Any, choice: str) -> None:
    """Auth, the weighted split, retries past a broken target, streaming and metrics, on the loop
    the CLI chose (named in its log)."""
    a, b, c, broken = harness.fake("a"), harness.fake("b"), harness.fake("c"), harness.fake("broken")
    broken.mode = "error"
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.format(a=a.url, b=b.url, broken=broken.url, c=c.url))
    port = free_port()
    command = [sys.executable, "-m", "modelyard", "gateway", "--routes", str(path), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--event-loop", choice]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=_env())
    base = f"http://127.0.0.1:{port}"
    try:
        output = lambda: process.stderr.read() if process.stderr else ""  # noqa: E731
        wait_serving(process, f"{base}/healthz", 60, output)
        anonymous = openai.OpenAI(base_url=f"{base}/v1", api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            anonymous.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="sk-alice", max_retries=0)

        def ask(model: str) -> str:
            reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
            return str(reply.choices[0].message.content)

        assert sorted(ask("llama") for _ in range(8)) == ["hello from a"] * 6 + ["hello from b"] * 2
        assert [ask("flaky") for _ in range(4)] == ["hello from c"] * 4  # the broken pod retried past
        assert broken.requests
        stream = client.chat.completions.create(
            model="llama", messages=[{"role": "user", "content": "x"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text in ("a-0 a-1 a-2 ", "b-0 b-1 b-2 ")
        metrics = wait_for(lambda: http_get(f"{base}/metrics")[1], 10, "/metrics")
        served = 'modelyard_gateway_requests_total{code="200",endpoint="default/llama-a",model="llama"}'
        assert served in metrics
        assert 'modelyard_gateway_retries_total{model="flaky",reason="status_5xx"}' in metrics
        assert 'modelyard_gateway_requests_total{code="401",endpoint="none",model="unknown"} 1.0' in metrics
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert f"event loop: {choice}" in stderr


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GATEWAY_EVENT_LOOP"}
