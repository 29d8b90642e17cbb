"""Elastic capacity end to end: the real operator scales a tiny Llama endpoint from the demand of
two real gateway processes, and no request is lost on the way.

A cluster of its own (two CPU nodes) runs ``modelyard operator`` (scraping both gateways with
``--gateway-metrics-url``, every half second) and two ``modelyard gateway`` processes; the
endpoint's pods are ``modelyard runtime`` processes the node agent starts. The endpoint is
autoscaled ``{minReplicas: 0, maxReplicas: 3, targetRequests: 2, scaleDownDelaySeconds: 5}``.

Clients are closed loops (one request after another, each over one gateway; streams and plain
requests), so the demand the gateways report is the number of clients running:

1. two clients at zero replicas: their first requests are held, wake the endpoint (0 -> 1) and
   are answered;
2. four more (six): 1 -> 3, every pod answers, and the operator's status API shows the traffic;
3. four stop (two left): 3 -> 1 while the two keep going;
4. all stop: 1 -> 0.

Every answer is checked: 200, ``finish_reason`` ``length`` with every token asked for (usage),
and each stream ends with ``[DONE]`` and no error event. A second test fills the cluster: an
endpoint whose pods cannot schedule reports Unschedulable, and the requests held for it end with
a 503 + ``Retry-After`` whose message carries the reason.

A little over 300 lines: the closed-loop clients and the answer checks serve only this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import faultkit
import pytest
import requests

import kit

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(900)]

NAMESPACE = "elastic"
ENTRY = "elastic-tiny"
SERVED = "elastic-chat"
ENDPOINT = "elastic"
PLAIN_TOKENS = 48
STREAM_TOKENS = 600  # a few seconds a stream on a busy 2-core machine: some outlive a pod's preStop
GROUP = faultkit.GROUP_PATH


@dataclasses.dataclass
class Elastic:
    cluster: Any
    operator: kit.Process
    status_url: str
    gateways: list[faultkit.Gateway]


@pytest.fixture(scope="module")
def elastic(
    own_cluster: Any, tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Elastic]:
    tmp = tmp_path_factory.mktemp("elastic")
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(own_cluster(tmp / "cluster", ["node-a:0", "node-b:0"]))
        kit.install_crds(cluster)
        for namespace in ("modelyard-system", NAMESPACE):
            cluster.kubectl("create", "namespace", namespace)
        gateways = [
            faultkit.Gateway(cluster.kubeconfig, tmp / f"gateway-{i}.log", "--hold-timeout", "300")
            for i in range(2)
        ]
        port = kit.free_port()
        scrape = [a for gw in gateways for a in ("--gateway-metrics-url", f"{gw.url}/metrics")]
        operator = kit.Process(
            ["operator", "--kubeconfig", str(cluster.kubeconfig), "--namespace", "modelyard-system",
             "--no-webhook", "--metrics-port", str(port), "--autoscale-interval", "0.5", *scrape],
            tmp / "operator.log",
        )  # fmt: skip
        for process in (operator, *gateways):
            process.start()
            stack.callback(process.stop)
            stack.callback(print, f"log: {process.log}", file=sys.stderr)
        kit.wait_for(lambda: "holding the Lease" in operator.tail(100_000), 90, "the operator to lead")
        for gw in gateways:
            kit.wait_for(lambda gw=gw: kit.http_get(f"{gw.url}/readyz")[0] == 200, 60, "a gateway ready")
            # ours, not a process of a run beside this one that took the port first
            assert gw.alive, f"the gateway exited:\n{gw.tail()}"
        entry = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {ENTRY}}}
spec:
  source: {{provider: local, uri: "file://{tiny_llama}"}}
  architecture: LlamaForCausalLM
  servedName: {SERVED}
"""
        cluster.kubectl("apply", "-f", "-", input=entry)
        yield Elastic(cluster, operator, f"http://127.0.0.1:{port}", gateways)


def endpoint_manifest(name: str, served: str, resources: str) -> str:
    return f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: {name}, namespace: {NAMESPACE}}}
spec:
  model: {ENTRY}
  servedName: {served}
  replicas: 0
  resources: {resources}
  env: [{{name: OMP_NUM_THREADS, value: "1"}}]
  autoscaling: {{minReplicas: 0, maxReplicas: 3, targetRequests: 2, scaleDownDelaySeconds: 5}}
"""


def _endpoint(cluster: Any, name: str = ENDPOINT) -> dict[str, Any]:
    found: dict[str, Any] = cluster.kube.get(f"{GROUP}/namespaces/{NAMESPACE}/modelendpoints/{name}") or {}
    return found


def _pods(cluster: Any, name: str = ENDPOINT) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cluster.kube.get(
        f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=f"modelyard.io/endpoint={name}"
    )["items"]
    return found


def _at(cluster: Any, replicas: int, ready: int) -> bool:
    """spec.replicas, ready pods and pods that exist (a drained pod is gone) all as given."""
    body = _endpoint(cluster)
    status = body.get("status") or {}
    return (
        body.get("spec", {}).get("replicas") == replicas
        and int(status.get("readyReplicas") or 0) == ready
        and len(_pods(cluster)) == ready
    )


def _routed(gw: faultkit.Gateway, endpoint: str) -> bool:
    """The gateway routes to the endpoint (its demand series exists, at zero too)."""
    return f'endpoint="{endpoint}"' in gw.metrics()


@dataclasses.dataclass
class Answer:
    client: int
    stream: bool
    status: int
    problem: str = ""
    """Empty when the answer is whole; else what is wrong with it."""


class Clients:
    """Closed-loop clients on a background event loop: each sends its next request when the
    previous one is answered, until it is stopped (its request under way still finishes)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.answers: list[Answer] = []
        self.stops: list[threading.Event] = []
        self.tasks: list[Any] = []

    def start(self, url: str, stream: bool) -> int:
        index = len(self.stops)
        self.stops.append(threading.Event())
        coro = self._client(index, f"{url}/v1/chat/completions", stream)
        self.tasks.append(asyncio.run_coroutine_threadsafe(coro, self.loop))
        return index

    def stop(self, *indexes: int) -> None:
        for index in indexes:
            self.stops[index].set()

    def answered(self, index: int) -> int:
        return sum(a.client == index for a in self.answers)

    def join(self, timeout: float) -> None:
        for index in range(len(self.stops)):
            self.stops[index].set()
        deadline = time.monotonic() + timeout
        for task in self.tasks:
            task.result(max(0.1, deadline - time.monotonic()))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _client(self, index: int, url: str, stream: bool) -> None:
        tokens = STREAM_TOKENS if stream else PLAIN_TOKENS
        body = faultkit.chat_body(SERVED, tokens, stream=stream, ignore_eos=True)
        if stream:
            body["stream_options"] = {"include_usage": True}
        timeout = aiohttp.ClientTimeout(total=360, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self.stops[index].is_set():
                try:
                    async with session.post(url, json=body) as response:
                        text = await response.text()
                        problem = _check(text, stream, tokens) if response.status == 200 else text[:300]
                        self.answers.append(Answer(index, stream, response.status, problem))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.answers.append(Answer(index, stream, 0, repr(exc)))


def _check(text: str, stream: bool, tokens: int) -> str:
    """What is missing from a 200 answer ('' when it is whole)."""
    if not stream:
        body = json.loads(text)
        finish, usage = body["choices"][0]["finish_reason"], body.get("usage") or {}
    else:
        # SSE lines end at LF: str.splitlines() would also split at U+2028, U+0085... in a token
        events = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
        if not events or events[-1] != "[DONE]":
            return f"stream cut: last events {events[-2:]}"
        chunks = [json.loads(e) for e in events[:-1]]
        if any("error" in c for c in chunks):
            return f"stream ended with an error event: {[c for c in chunks if 'error' in c]}"
        finish = next((c["choices"][0]["finish_reason"] for c in chunks
                       if c.get("choices") and c["choices"][0].get("finish_reason")), None)  # fmt: skip
        usage = next((c["usage"] for c in chunks if c.get("usage")), {})
    if finish != "length" or usage.get("completion_tokens") != tokens:
        return f"incomplete: finish_reason {finish}, usage {usage}"
    return ""


def _served_by_every_pod(cluster: Any) -> bool:
    """Each ready pod of the endpoint has answered requests (its own /metrics says so)."""
    ips = [p["status"]["podIP"] for p in _pods(cluster) if p.get("status", {}).get("podIP")]
    counts = [
        kit.metric(kit.http_get(f"http://{ip}:8000/metrics")[1], "modelyard_runtime_requests_total")
        for ip in ips
    ]
    return len(counts) == 3 and all(c > 0 for c in counts)


def _draining(cluster: Any, seen: dict[str, float]) -> None:
    """Note the requests each terminating pod still has (its own /metrics) while it drains."""
    for pod in _pods(cluster):
        ip = pod.get("status", {}).get("podIP")
        if pod["metadata"].get("deletionTimestamp") and ip:
            text = kit.http_get(f"http://{ip}:8000/metrics", timeout=1)[1]
            depth = kit.metric(text, "modelyard_runtime_queue_depth") if text else 0.0
            name = pod["metadata"]["name"]
            seen[name] = max(seen.get(name, 0.0), depth)


def _status_api_traffic(url: str) -> dict[str, Any] | None:
    status, text = kit.http_get(f"{url}/api/v1/endpoints?namespace={NAMESPACE}")
    if status != 200:
        return None
    row = next((r for r in json.loads(text)["data"] if r["name"] == ENDPOINT), None)
    if not row or row["desired_replicas"] != 3 or row["current_replicas"] != 3:
        return None
    return row if (row["requests_per_s"] or 0) > 0 and (row["demand"] or 0) > 0 else None


def test_scale_from_zero_up_to_three_and_back_to_zero_losing_nothing(elastic: Elastic) -> None:
    cluster, gws = elastic.cluster, elastic.gateways
    cluster.kubectl("apply", "-f", "-", input=endpoint_manifest(
        ENDPOINT, SERVED, '{gpus: 0, cpu: "1", memory: 1Gi}'))  # fmt: skip
    kit.wait_for(
        lambda: (_endpoint(cluster).get("status") or {}).get("reason") == "ScaledToZero", 60, "ScaledToZero"
    )
    kit.wait_for(lambda: all(_routed(gw, ENDPOINT) for gw in gws), 60, "both gateways to route it")
    clients = Clients()
    try:
        # 1. at zero: a plain request over one gateway, a stream over the other, both held
        first = [clients.start(gws[0].url, stream=False), clients.start(gws[1].url, stream=True)]
        kit.wait_for(lambda: all(clients.answered(i) for i in first), 300, "the held requests answered")
        held = sum(kit.metric(gw.metrics(), "modelyard_gateway_held_total", model=SERVED, outcome="sent")
                   for gw in gws)  # fmt: skip
        assert held >= 2, f"the first requests were not held: {held}"
        assert [a.status for a in clients.answers[:2]] == [200, 200], clients.answers[:2]
        assert "waking" in _endpoint(cluster)["status"]["autoscaling"]["lastScaleReason"]

        # 2. the ramp: six clients over both gateways -> demand 6 / targetRequests 2 = 3 replicas
        more = [clients.start(gws[i % 2].url, stream=i % 3 != 0) for i in range(4)]
        kit.wait_for(lambda: _at(cluster, 3, 3), 300, "3 ready replicas under load")
        kit.wait_for(lambda: _served_by_every_pod(cluster), 120, "every pod to answer requests")
        kit.wait_for(
            lambda: _status_api_traffic(elastic.status_url), 60, "the status API: 3 replicas, traffic"
        )

        # 3. four clients stop: demand 2 -> 1 replica after the delay, while two keep sending
        clients.stop(*more)
        drained: dict[str, float] = {}
        kit.wait_for(lambda: _draining(cluster, drained) or _at(cluster, 1, 1), 300, "3 -> 1, pods drained")
        marks = {i: clients.answered(i) for i in first}
        kit.wait_for(lambda: all(clients.answered(i) > marks[i] for i in first), 120, "served after 3 -> 1")

        # 4. idle -> 0
        clients.stop(*first)
        kit.wait_for(lambda: _at(cluster, 0, 0), 300, "idle -> 0 replicas, no pod left")
    finally:
        clients.join(360)
    assert (_endpoint(cluster).get("status") or {}).get("reason") == "ScaledToZero"
    lost = [a for a in clients.answers if a.status != 200 or a.problem]
    streams = [a for a in clients.answers if a.stream]
    figures = {"answers": len(clients.answers), "streams": len(streams), "lost_or_cut": len(lost)}
    print("AUTOSCALE-E2E", json.dumps({**figures, "in_flight_while_draining": drained}))
    assert lost == [], f"{len(lost)} of {len(clients.answers)} requests lost or cut: {lost[:5]}"
    assert len(streams) >= 6 and len(clients.answers) - len(streams) >= 6


def test_a_full_cluster_ends_held_requests_with_503_and_the_reason(elastic: Elastic) -> None:
    cluster, gws = elastic.cluster, elastic.gateways
    # Four GPUs fit neither node (they have none): the woken pod stays Pending, Unschedulable.
    cluster.kubectl("apply", "-f", "-", input=endpoint_manifest("full", "full-chat", "{gpus: 4}"))
    kit.wait_for(lambda: all(_routed(gw, "full") for gw in gws), 60, "both gateways to route it")
    body = {"model": "full-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        sent = [
            pool.submit(requests.post, f"{gw.url}/v1/chat/completions", json={**body, "stream": stream},
                        timeout=300)
            for gw, stream in ((gws[0], False), (gws[1], True))
        ]  # fmt: skip
        answers = [f.result() for f in sent]
    status = _endpoint(cluster, "full")["status"]
    assert status["reason"] == "Unschedulable", status
    assert _endpoint(cluster, "full")["spec"]["replicas"] == 1  # woken, and not more: nothing fits
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["Retry-After"]) > 0
        error = answer.json()["error"]
        assert "Unschedulable" in error["message"], error
        assert "Insufficient nvidia.com/gpu" in error["message"], error
