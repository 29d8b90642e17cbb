"""Whatever goes wrong inside the gateway, an OpenAI client gets the OpenAI error shape: an
unknown /v1 path or method, and an unforeseen exception (a 500 without internals, logged)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests

from modelyard.gateway import discovery, routes


class BrokenDiscovery(discovery.StaticDiscovery):
    """Its route table cannot be read: stands in for any bug behind a request."""

    def table(self) -> routes.RouteTable:
        raise RuntimeError("secret internal detail")


def test_an_unforeseen_exception_is_a_500_in_the_openai_shape(
    harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = harness.gateway(BrokenDiscovery())
    response = requests.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": []}, timeout=10)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert "secret internal detail" not in response.text
    assert "secret internal detail" in caplog.text  # the traceback is in the gateway's log


def test_unknown_paths_and_methods_under_v1_answer_in_the_openai_shape(harness: Any) -> None:
    url, _ = harness.gateway(discovery.StaticDiscovery())
    missing = requests.post(f"{url}/v1/no-such-thing", json={}, timeout=10)
    assert missing.status_code == 404
    assert "/v1/no-such-thing" in missing.json()["error"]["message"]
    wrong_method = requests.get(f"{url}/v1/chat/completions", timeout=10)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"]
    assert requests.get(f"{url}/healthz", timeout=10).text == "ok"


def test_a_body_sent_after_100_continue_is_forwarded(harness: Any, make_table: Any, make_pods: Any) -> None:
    """``Expect: 100-continue`` is answered before the handler runs, as aiohttp's own dispatch
    did (the gateway's dispatch replaces it: :mod:`modelyard.gateway.dispatch`)."""
    fake = harness.fake("pod-a")
    url, _ = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/llama", "llama", fake))))
    host, port = url.removeprefix("http://").split(":")
    payload = b'{"model": "llama", "messages": [{"role": "user", "content": "hi"}]}'
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\n\r\n"
        )
        sock.sendall(head.encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(payload)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")
