"""A runtime pod SIGKILLed under steady load: no request fails and no stream is cut.

Two ``modelyard runtime`` pods serve the tiny Llama (one generation at a time each). Four long
streams are opened one by one and each is traced to the pod that took it (the pod's own
``modelyard_runtime_queue_depth`` rises), then non-streaming requests arrive at a fixed rate.
One pod's process is SIGKILLed while it streams. The gateway retries every non-streaming request
the dead pod held or was sent (before their first byte), retries streams that had not started
there, and resumes the stream that was under way there on the other pod (docs/gateway.md#stream-resumption):
the client sees one whole stream, its usage counting every token asked for. (That the resumed text
is the uninterrupted text, token for token, is tests/gateway/test_resume_through_runtime.py: the
untaught tiny Llama writes byte tokens whose decoded text does not tokenise back to them.)
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from collections.abc import Callable
from typing import Any

import faultkit
import pytest

import kit

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(420)]

STREAM_TOKENS = 2000  # ~3 s of generation each on a quiet 2-core machine, far more when busy
STREAMS = 4
RATE = 2.0  # non-streaming requests per second
DURATION = 20.0


def _depths(ips: dict[str, str]) -> dict[str, float]:
    """Requests running or waiting in each pod, from the pod's own /metrics."""
    found = {}
    for pod, ip in ips.items():
        status, text = kit.http_get(f"http://{ip}:8000/metrics")
        found[pod] = kit.metric(text, "modelyard_runtime_queue_depth") if status == 200 else -1.0
    return found


def _slice_ready(cluster: Any) -> int:
    slices = cluster.kube.get(
        f"/apis/discovery.k8s.io/v1/namespaces/{faultkit.NAMESPACE}/endpointslices",
        labelSelector=f"kubernetes.io/service-name={faultkit.ENDPOINT}",
    )["items"]
    return sum(bool(e.get("conditions", {}).get("ready")) for s in slices for e in s.get("endpoints") or [])


def _restarted(cluster: Any, pod: str) -> bool:
    found = cluster.kube.get(f"/api/v1/namespaces/{faultkit.NAMESPACE}/pods/{pod}") or {}
    statuses = found.get("status", {}).get("containerStatuses") or []
    return any(s.get("restartCount", 0) >= 1 for s in statuses)


def test_killed_runtime_pod_fails_no_request_and_cuts_no_stream(
    fault_cluster: Any, chat_endpoint: str, start_gateway: Callable[..., faultkit.Gateway]
) -> None:
    kit.wait_for(lambda: faultkit.ready(fault_cluster), 240, "the endpoint Ready with 2 replicas")
    ips = kit.wait_for(
        lambda: found if len(found := faultkit.pod_ips(fault_cluster)) == 2 else None, 60, "two ready pods"
    )
    kit.wait_for(lambda: _slice_ready(fault_cluster) == 2, 60, "both pods in the EndpointSlice")
    gw = start_gateway()
    traffic = faultkit.Traffic(gw.url)
    try:
        served_by: dict[int, str] = {}
        for _ in range(STREAMS):
            before = _depths(ips)
            record = traffic.stream(
                faultkit.chat_body(
                    chat_endpoint,
                    STREAM_TOKENS,
                    stream=True,
                    ignore_eos=True,
                    stream_options={"include_usage": True},
                )
            )
            served_by[record.index] = kit.wait_for(
                lambda before=before: next((p for p, d in _depths(ips).items() if d > before[p]), None),
                30,
                f"stream {record.index} to reach a pod",
                interval=0.05,
            )
        assert set(served_by.values()) == set(ips), f"the streams were not spread: {served_by}"

        traffic.steady(faultkit.chat_body(chat_endpoint, 8), RATE, DURATION)
        time.sleep(1)

        def early_stream() -> faultkit.Stream | None:
            """A stream under way with most of its tokens still to come (so it cannot end first)."""
            going = [s for s in traffic.streams if s.first_content_at and s.finished_at is None]
            going = [s for s in going if s.content_chunks < STREAM_TOKENS * 0.3]
            return min(going, key=lambda s: s.content_chunks) if going else None

        victim = served_by[kit.wait_for(early_stream, 60, "a stream just under way").index]
        under_way = {s.index for s in traffic.streams if s.first_content_at and s.finished_at is None}
        broken = {i for i in under_way if served_by[i] == victim}
        before_kill = {i: traffic.streams[i].content_chunks for i in broken}
        pid = fault_cluster.agent.pids()[f"{faultkit.NAMESPACE}/{victim}"][0]
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()

        back = kit.wait_for(
            lambda: (
                _restarted(fault_cluster, victim)
                and victim in faultkit.pod_ips(fault_cluster)
                and time.monotonic()
            ),
            120,
            "the killed pod's container restarted and Ready",
        )
        traffic.wait(180)
    finally:
        traffic.close()

    outcomes = traffic.outcomes
    failed = [o for o in outcomes if o.status != 200]
    assert len(outcomes) == int(RATE * DURATION)
    assert failed == [], f"{len(failed)} of {len(outcomes)} requests failed: {failed[:5]}"

    cut = {s.index for s in traffic.streams if s.error is not None}
    assert broken, "no stream was under way on the killed pod"
    assert cut == set(), f"cut {cut} (served by {served_by}, killed {victim})"
    for stream in traffic.streams:
        assert stream.status == 200 and stream.failure == "" and stream.done, stream
        assert stream.events.count("[DONE]") == 1, f"stream {stream.index}: {stream.events[-3:]}"
        assert stream.finish_reason == "length", f"stream {stream.index} did not complete"
        # whole: one answer (one id, one opening role), every token asked for, more text than
        # the client had when the pod died
        chunks = stream.chunks
        assert len({c["id"] for c in chunks}) == 1, f"stream {stream.index} mixes ids"
        roles = [c["delta"]["role"] for chunk in chunks for c in chunk["choices"] if c["delta"].get("role")]
        assert roles == ["assistant"], f"stream {stream.index}: roles {roles}"
        usage = stream.usage
        assert usage is not None and usage["completion_tokens"] == STREAM_TOKENS, (stream.index, usage)
        if stream.index in broken:
            assert stream.content_chunks > before_kill[stream.index] and stream.text

    # the restarted pod takes traffic again
    text = gw.metrics()
    ips = faultkit.pod_ips(fault_cluster)
    answered = kit.wait_for(
        lambda: (
            _send_one(gw.url, chat_endpoint)
            and kit.metric(kit.http_get(f"http://{ips[victim]}:8000/metrics")[1],
                                "modelyard_runtime_requests_total")
        ),
        60,
        "the restarted pod to answer through the gateway",
    )  # fmt: skip
    assert answered > 0

    latencies = sorted(o.seconds for o in outcomes)
    figures = {
        "requests": len(outcomes),
        "failed": len(failed),
        "retries": kit.metric(text, "modelyard_gateway_retries_total"),
        "streams": len(traffic.streams),
        "streams_cut": len(cut),
        "streams_resumed": len(broken),
        "resumptions": kit.metric(text, "modelyard_gateway_stream_resumptions_total", outcome="resumed"),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_max_s": round(latencies[-1], 2),
        "pod_ready_again_s": round(back - killed_at, 1),
    }
    print("FAULT-FIGURES pod-kill", json.dumps(figures))


def _send_one(url: str, model: str) -> bool:
    import urllib.request

    body = json.dumps(faultkit.chat_body(model, 4)).encode()
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return bool(response.status == 200)
