"""PrefixHash through real gateways: two ``modelyard gateway`` processes that share nothing send
each prompt prefix (and each session) to the same pod; a hot prefix spills at the load bound,
counted in ``modelyard_gateway_prefix_spills_total``; the split between endpoints holds."""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from kit import free_port, http_get, metric, wait_serving
from modelyard.gateway import discovery, routes

KEY = "sk-prefix-test"
PODS = 4


def _routes(pods: list[str], split: tuple[str, str]) -> str:
    urls = ", ".join(f"'{u}'" for u in pods)
    return (
        "models:\n"
        "  - name: chat\n    endpoints:\n"
        f"      - {{name: ns/chat, urls: [{urls}],\n"
        "         routing: {strategy: PrefixHash, prefixCharLength: 200}}\n"
        "  - name: session\n    endpoints:\n"
        f"      - {{name: ns/session, urls: [{urls}],\n"
        "         routing: {strategy: PrefixHash, sessionHeader: X-Session-Id, sessionUser: true}}\n"
        "  - name: split\n    endpoints:\n"
        f"      - {{name: ns/big, weight: 300, urls: ['{split[0]}'], routing: {{strategy: PrefixHash}}}}\n"
        f"      - {{name: ns/small, weight: 100, urls: ['{split[1]}'], routing: {{strategy: PrefixHash}}}}\n"
        f"apiKeys: {{test: {KEY}}}\n"
    )


@pytest.fixture()
def gateways(harness: Any, tmp_path: Path) -> Iterator[tuple[list[str], list[Any], list[Any]]]:
    """Two gateway processes over the same pods, listed in a different order in each file."""
    fakes = [harness.fake(f"pod{i}") for i in range(PODS)]
    split = [harness.fake("big"), harness.fake("small")]
    urls, processes = [], []
    try:
        for index, order in enumerate((fakes, list(reversed(fakes)))):
            path = tmp_path / f"routes-{index}.yaml"
            path.write_text(_routes([f.url for f in order], (split[0].url, split[1].url)))
            port = free_port()
            command = [sys.executable, "-m", "modelyard", "gateway", "--routes", str(path),
                       "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING"]  # fmt: skip
            process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
            processes.append(process)
            output = lambda p=process: p.stderr.read() if p.stderr else ""  # noqa: E731
            wait_serving(process, f"http://127.0.0.1:{port}/readyz", 60, output)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls, fakes, split
    finally:
        for process in processes:
            process.terminate()
            process.communicate(timeout=10)


def _who(fakes: list[Any], marker: str) -> list[str]:
    """The fakes that received a request whose last message contains ``marker``."""
    return [f.name for f in fakes for r in f.requests if marker in r["body"]["messages"][-1]["content"]]


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=10)


def test_two_gateway_replicas_send_a_prefix_to_the_same_pod(gateways: Any) -> None:
    urls, fakes, _ = gateways
    clients = [_client(url) for url in urls]
    pods: dict[int, set[str]] = collections.defaultdict(set)
    for tenant in range(16):
        system = f"You are the assistant of tenant {tenant}. " * 10  # > prefixCharLength
        for user in range(3):  # users of one tenant share the system prompt, not the question
            for replica, client in enumerate(clients):
                marker = f"question {tenant}-{user}-{replica}"
                messages = [{"role": "system", "content": system}, {"role": "user", "content": marker}]
                client.chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
                pods[tenant].update(_who(fakes, marker))
    assert all(len(chosen) == 1 for chosen in pods.values()), pods
    assert len(set().union(*pods.values())) >= 3  # 16 prefixes spread over the 4 pods


def test_two_gateway_replicas_keep_a_session_on_one_pod(gateways: Any) -> None:
    urls, fakes, _ = gateways
    clients = [_client(url) for url in urls]
    for session in ("alpha", "beta", "gamma"):
        chosen: set[str] = set()
        for turn in range(4):
            for replica, client in enumerate(clients):
                marker = f"{session} turn {turn} via {replica}"  # a different prompt every time
                client.chat.completions.create(
                    model="session",
                    messages=[{"role": "user", "content": marker}],
                    extra_headers={"X-Session-Id": session},
                )
                chosen.update(_who(fakes, marker))
        assert len(chosen) == 1, (session, chosen)
    by_user: set[str] = set()
    for replica, client in enumerate(clients):  # no header: the OpenAI user field
        for turn in range(3):
            marker = f"user field turn {turn} via {replica}"
            messages = [{"role": "user", "content": marker}]
            client.chat.completions.create(model="session", messages=messages, user="dana")  # type: ignore[arg-type]
            by_user.update(_who(fakes, marker))
    assert len(by_user) == 1


def test_the_weighted_split_holds_with_prefix_hash(gateways: Any) -> None:
    urls, _, (big, small) = gateways
    client = _client(urls[0])
    for i in range(200):
        client.chat.completions.create(model="split", messages=[{"role": "user", "content": f"q{i} " * 20}])
    shares = (len(big.requests) / 2, len(small.requests) / 2)  # percent of 200
    assert abs(shares[0] - 75) <= 1 and abs(shares[1] - 25) <= 1, shares


def test_a_hot_prefix_spills_at_the_load_bound_and_is_counted(harness: Any) -> None:
    fakes = [harness.fake(f"pod{i}") for i in range(3)]
    hold = threading.Event()
    for fake in fakes:
        fake.hold = hold  # a stream sends its first event, then waits: its request stays in flight
    info = routes.EndpointInfo(
        "ns/hot",
        "hot",
        targets=tuple(discovery.pod_target("ns/hot", f.url) for f in fakes),
        routing=routes.Routing("PrefixHash", 100, 1.25),
    )
    url, _ = harness.gateway(discovery.StaticDiscovery(routes.build_table([info])))
    body = {"model": "hot", "stream": True, "messages": [{"role": "user", "content": "the same prompt"}]}

    sessions: list[aiohttp.ClientSession] = []

    async def open_streams(count: int) -> list[aiohttp.ClientResponse]:
        session = aiohttp.ClientSession()
        sessions.append(session)
        opened = []
        for _ in range(count):
            response = await session.post(f"{url}/v1/chat/completions", json=body)
            await response.content.readuntil(b"\n\n")  # the first event: it reached its pod
            opened.append(response)
        return opened

    streams = harness.loop.run(open_streams(9))
    try:
        counts = sorted(len(f.requests) for f in fakes)
        assert counts[0] > 0 and counts[-1] < 9  # spread over the pods, not piled on one
        scraped = http_get(f"{url}/metrics")[1]
        assert metric(scraped, "modelyard_gateway_prefix_spills_total", endpoint="ns/hot") > 0
    finally:
        hold.set()

        async def close() -> None:
            for response in streams:
                await response.read()
                response.release()
            await sessions[0].close()

        harness.loop.run(close())
