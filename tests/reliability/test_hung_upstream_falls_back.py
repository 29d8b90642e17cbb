"""An upstream that accepts requests and never answers: each attempt times out, then the fallback answers.

The upstream ModelEndpoint's base URL is a server that lists its models (so the operator marks
the endpoint Ready, as it would a healthy provider) but holds every completion request open
without a byte of answer. Its endpoint names the tiny Llama as ``fallback``. Through a gateway
with ``--attempt-timeout 2 --retry-attempts 1``, a request for the hung model waits out two
attempts, then is answered by the fallback model, streaming (behind keepalives) or not.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import faultkit
import pytest

import kit

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]

ATTEMPT_TIMEOUT = 2.0
ATTEMPTS = 2  # --retry-attempts 1
HUNG = "hung-model"
SLACK = 30.0  # the fallback's own answer on a busy 2-core machine, with room to spare


@pytest.fixture()
def hung_endpoint(fault_cluster: Any, chat_endpoint: str) -> Iterator[faultkit.Upstream]:
    upstream = faultkit.Upstream(hang=True)
    manifest = faultkit.upstream_manifest("hung", HUNG, upstream.url, fallback=chat_endpoint)
    fault_cluster.kubectl("apply", "-f", "-", input=manifest)
    kit.wait_for(
        lambda: faultkit.ready(fault_cluster, "hung", replicas=0), 60, "the upstream endpoint Ready"
    )
    yield upstream
    fault_cluster.kubectl("delete", "modelendpoint", "hung", "-n", faultkit.NAMESPACE, "--wait=false")
    fault_cluster.kubectl("delete", "modelentry", "hung", "--wait=false")
    upstream.close()


def test_hung_upstream_times_out_then_the_fallback_answers(
    fault_cluster: Any,
    chat_endpoint: str,
    hung_endpoint: faultkit.Upstream,
    start_gateway: Callable[..., faultkit.Gateway],
) -> None:
    gw = start_gateway(
        "--attempt-timeout", str(ATTEMPT_TIMEOUT), "--retry-attempts", str(ATTEMPTS - 1),
        "--keepalive-interval", "0.5", serving=HUNG,
    )  # fmt: skip
    floor = ATTEMPT_TIMEOUT * ATTEMPTS

    # not streaming: a plain 200 from the fallback, after both attempts timed out
    body = json.dumps(faultkit.chat_body(HUNG, 4)).encode()
    request = urllib.request.Request(
        f"{gw.url}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=120) as response:
        status, answer = response.status, json.loads(response.read())
    plain_seconds = time.monotonic() - started
    assert status == 200 and answer["model"] == chat_endpoint and answer["choices"][0]["message"]
    assert hung_endpoint.posts == ATTEMPTS
    assert floor <= plain_seconds < floor + SLACK, plain_seconds

    # streaming: keepalives while the attempts time out, then the fallback's events and [DONE]
    traffic = faultkit.Traffic(gw.url)
    try:
        started = time.monotonic()
        stream = traffic.stream(faultkit.chat_body(HUNG, 16, stream=True))
        traffic.wait(120)
    finally:
        traffic.close()
    stream_seconds = stream.finished_at - started if stream.finished_at else float("inf")
    assert stream.status == 200 and stream.failure == "" and stream.done, stream
    assert stream.error is None and stream.content_chunks >= 1
    assert json.loads(stream.events[0])["model"] == chat_endpoint
    assert stream.keepalives >= 2  # the client heard from the gateway while the upstream hung
    assert hung_endpoint.posts == 2 * ATTEMPTS
    assert floor <= stream_seconds < floor + SLACK, stream_seconds

    metrics = gw.metrics()
    assert kit.metric(metrics, "modelyard_gateway_retries_total", model=HUNG, reason="timeout") == 2
    assert kit.metric(
        metrics, "modelyard_gateway_fallbacks_total", model=HUNG, fallback=chat_endpoint
    ) == 2
    figures = {
        "attempt_timeout_s": ATTEMPT_TIMEOUT,
        "attempts": ATTEMPTS,
        "plain_answer_s": round(plain_seconds, 2),
        "stream_done_s": round(stream_seconds, 2),
        "keepalives": stream.keepalives,
    }
    print("FAULT-FIGURES hung-upstream", json.dumps(figures))
