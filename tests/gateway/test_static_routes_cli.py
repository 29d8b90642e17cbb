"""``modelyard gateway --routes FILE`` serves without a cluster; flags and env become settings."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai

from kit import free_port, wait_serving
from modelyard.gateway import cli, discovery

ROUTES = """
models:
  - name: llama
    fallback: [small]
    endpoints:
      - name: default/llama-a
        weight: 300
        urls: ["{pod}"]
      - name: default/llama-remote
        urls: ["{pod}/v1"]
        upstream: {{model: gpt-remote, apiKeyEnv: REMOTE_KEY, headers: {{X-Org: acme}}}}
  - name: small
apiKeys:
  alice: sk-alice
  alice.models: llama
"""


def test_routes_file_format(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.format(pod="http://10.0.0.5:8000"))
    source = discovery.load_routes_file(path, env={"REMOTE_KEY": "sk-remote"})
    llama = source.table().get("llama")
    assert llama is not None and llama.fallback == ("small",)
    local, remote = llama.endpoints
    assert (local.weight, local.targets[0].base) == (300, "http://10.0.0.5:8000/v1")
    assert remote.targets[0].base == "http://10.0.0.5:8000/v1"
    assert remote.upstream is not None and remote.upstream.api_key == "sk-remote"
    assert remote.upstream.model == "gpt-remote" and remote.upstream.headers == (("X-Org", "acme"),)
    small = source.table().get("small")
    assert small is not None and not small.routable
    assert source.keys().lookup("sk-alice") is not None


def test_flags_override_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("RETRY_ATTEMPTS", "5")
    monkeypatch.setenv("RETRY_DELAY", "250")
    monkeypatch.setenv("FALLBACK_MODEL", "small")
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    config = cli.build_settings(parser.parse_args(["--retry-delay", "50"]))
    assert (config.retry_attempts, config.retry_delay, config.fallback_model) == (5, 0.05, "small")


def test_stream_stall_timeout_from_flag_or_environment(monkeypatch: Any) -> None:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    assert cli.build_settings(parser.parse_args([])).stream_stall_timeout == 30
    monkeypatch.setenv("GATEWAY_STREAM_STALL", "12")
    assert cli.build_settings(parser.parse_args([])).stream_stall_timeout == 12
    assert cli.build_settings(parser.parse_args(["--stream-stall-timeout", "0"])).stream_stall_timeout == 0


def test_modelyard_gateway_serves_a_routes_file(tmp_path: Path, harness: Any) -> None:
    pod = harness.fake("pod")
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.format(pod=pod.url))
    port = free_port()
    command = [sys.executable, "-m", "modelyard", "gateway", "--routes", str(path), "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        output = lambda: process.stderr.read() if process.stderr else ""  # noqa: E731
        wait_serving(process, f"http://127.0.0.1:{port}/readyz", 60, output)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-alice", max_retries=0)
        reply = client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
        assert reply.choices[0].message.content == "hello from pod"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "sk-alice" not in stderr


def test_no_cluster_and_no_routes_is_a_clear_error(tmp_path: Path, capsys: Any) -> None:
    from modelyard import cli as modelyard_cli

    assert modelyard_cli.main(["gateway", "--kubeconfig", str(tmp_path / "missing.yaml")]) == 2
    assert "--routes FILE" in capsys.readouterr().err
