"""On the real control plane, a real ``modelyard gateway`` process holds requests for an endpoint
at zero: sent once an EndpointSlice gives a ready address, or ended with a 503 + Retry-After
(Unschedulable, queue bound, timeout). Every request sent gets exactly one answer.

No operator runs: the test writes the ModelEndpoint's status and the EndpointSlice by hand,
as the operator and the EndpointSlice controller would.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import handkit
from kit import Process, free_port, http_get, metric, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


class Plane(handkit.HandOperator):
    """The operator's side, by hand: endpoints at zero, their status, their EndpointSlices."""

    def at_zero(self, name: str) -> None:
        self.create_endpoint(name, {"model": "tiny", "servedName": name, "replicas": 0})
        self.status(name, phase="Pending", reason="ScaledToZero", message="replicas is 0")

    def wake(self, name: str) -> None:
        """What the operator does on demand: one replica."""
        self.patch_endpoint(name, {"replicas": 1})

    def status(self, name: str, **status: str) -> None:
        self.endpoint_status(name, {**status, "servedName": name, "engine": "vllm"})

    def ready_pod(self, endpoint: str, url: str) -> None:
        self.endpoint_slice(endpoint, f"{endpoint}-1", url, {"ready": True, "serving": True})


@pytest.fixture()
def plane(local_cluster: Any, crds: None, namespace: str) -> Plane:
    return Plane(local_cluster.kube, namespace)


@pytest.fixture()
def start_gateway(local_cluster: Any, tmp_path: Path) -> Iterator[Any]:
    started: list[Process] = []

    def start(*flags: str) -> str:
        port = free_port()
        log = tmp_path / f"gateway-{port}.log"
        process = Process(
            [
                "gateway",
                "--kubeconfig",
                str(local_cluster.kubeconfig),
                "--no-auth",
                "--port",
                str(port),
                *flags,
            ],
            log,
        )
        process.start()
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(f"{url}/readyz")[0] == 200, 60, f"the gateway to sync ({process.tail()})")
        return url

    yield start
    for process in started:
        process.stop()


def _held(url: str, model: str) -> float:
    return metric(http_get(f"{url}/metrics")[1], "modelyard_gateway_held_requests", model=model)


def _post(url: str, model: str, stream: bool = False) -> requests.Response:
    return requests.post(
        f"{url}/v1/chat/completions", json={**CHAT, "model": model, "stream": stream}, timeout=120
    )


def test_held_requests_are_answered_when_a_pod_is_ready(
    plane: Plane, start_gateway: Any, harness: Any
) -> None:
    plane.at_zero("cold")
    url = start_gateway()
    wait_for(
        lambda: 'endpoint="cold"' in http_get(f"{url}/metrics")[1], 30, "the demand series of the endpoint"
    )
    fake = harness.fake("cold", "127.0.0.7")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        plain = [pool.submit(_post, url, "cold") for _ in range(2)]
        stream = pool.submit(_post, url, "cold", True)
        wait_for(lambda: _held(url, "cold") == 3, 30, "3 requests held")
        demand = metric(
            http_get(f"{url}/metrics")[1],
            "modelyard_gateway_endpoint_demand",
            namespace=plane.ns,
            endpoint="cold",
        )
        assert demand == 3
        plane.wake("cold")
        plane.status("cold", phase="Progressing", reason="ScalingUp", message="0/1 replicas ready")
        plane.ready_pod("cold", fake.url)
        answers = [f.result() for f in plain]
        streamed = stream.result()
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.json()["choices"][0]["message"]["content"] == "hello from cold" for a in answers)
    assert streamed.status_code == 200 and "cold-2" in streamed.text and streamed.text.endswith("[DONE]\n\n")
    assert len(fake.requests) == 3  # each held request sent exactly once


def test_unschedulable_ends_held_requests_with_its_reason(plane: Plane, start_gateway: Any) -> None:
    plane.at_zero("stuck")
    url = start_gateway()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(_post, url, "stuck"), pool.submit(_post, url, "stuck", True)]
        wait_for(lambda: _held(url, "stuck") == 2, 30, "2 requests held")
        why = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
        plane.status("stuck", phase="Pending", reason="Unschedulable", message=f"Unschedulable: {why}")
        answers = [f.result() for f in futures]
    for answer in answers:
        assert answer.status_code == 503
        assert int(answer.headers["Retry-After"]) > 0
        error = answer.json()["error"]
        assert error["code"] == "model_unavailable" and "Unschedulable" in error["message"]
        assert why in error["message"]


def test_the_hold_queue_bound_and_the_hold_timeout(plane: Plane, start_gateway: Any) -> None:
    plane.at_zero("slow")
    url = start_gateway("--hold-queue", "2", "--hold-timeout", "3")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        held = [pool.submit(_post, url, "slow") for _ in range(2)]
        wait_for(lambda: _held(url, "slow") == 2, 30, "2 requests held")
        over = _post(url, "slow")
        assert over.status_code == 503 and int(over.headers["Retry-After"]) > 0
        assert "--hold-queue" in over.json()["error"]["message"]
        timed_out = [f.result() for f in held]
    for answer in timed_out:
        assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
        assert "--hold-timeout" in answer.json()["error"]["message"]
    text = http_get(f"{url}/metrics")[1]
    outcomes = {
        o: metric(text, "modelyard_gateway_held_total", model="slow", outcome=o)
        for o in ("queue_full", "timeout")
    }
    assert outcomes == {"queue_full": 1, "timeout": 2}  # 3 requests, 3 answers
    assert metric(text, "modelyard_gateway_endpoint_demand", namespace=plane.ns, endpoint="slow") == 0
