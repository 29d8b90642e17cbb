"""The API server restarted under load: the gateway serves throughout, then operator and gateway recover.

The API server is stopped (SIGTERM), kept down for 5 s and started again with the same command
line and port (``ControlPlane.restart``), while non-streaming requests arrive at a fixed rate.
The gateway answers them all from its last-known routes (the runtime pods never needed the API).
Afterwards the same operator process and gateway (no restarts) must pick up a new endpoint: the
operator reconciles it to Ready and the gateway routes to it, within a bound.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import faultkit
import pytest

import kit
from modelyard.local import controlplane

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]

RATE = 4.0
DURATION = 25.0
DOWN_FOR = 5.0
RECOVERY_BOUND = 60.0


def _answer(url: str, model: str) -> str | None:
    body = json.dumps(faultkit.chat_body(model, 4)).encode()
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["choices"][0]["message"]["content"])
    except OSError:
        return None


def test_gateway_serves_through_an_api_server_restart_and_both_recover(
    fault_cluster: Any,
    fault_operator: kit.Process,
    chat_endpoint: str,
    start_gateway: Callable[..., faultkit.Gateway],
) -> None:
    kit.wait_for(lambda: faultkit.ready(fault_cluster), 240, "the endpoint Ready")
    gw = start_gateway()
    assert fault_operator.process is not None
    operator_pid = fault_operator.process.pid
    plane = controlplane.ControlPlane(fault_cluster.state_dir)
    apiserver_pid = plane.pids()["apiserver"]

    traffic = faultkit.Traffic(gw.url)
    try:
        traffic.steady(faultkit.chat_body(chat_endpoint, 8), RATE, DURATION)
        time.sleep(3)
        stopped = time.monotonic()
        plane.restart("apiserver", down_for=DOWN_FOR, timeout=90, log=print)
        outage = time.monotonic() - stopped
        traffic.wait(120)
    finally:
        traffic.close()
    assert plane.pids()["apiserver"] != apiserver_pid

    failed = [o for o in traffic.outcomes if o.status != 200]
    assert len(traffic.outcomes) == int(RATE * DURATION)
    assert failed == [], f"{len(failed)} of {len(traffic.outcomes)} failed: {failed[:5]}"

    # both recover, without a restart: a new endpoint is reconciled and routed
    assert fault_operator.alive and fault_operator.process.pid == operator_pid, fault_operator.tail()
    upstream = faultkit.Upstream()
    try:
        applied = time.monotonic()
        manifest = faultkit.upstream_manifest("after-restart", "after-restart", upstream.url)
        kit.wait_for(
            lambda: fault_cluster.kubectl("apply", "-f", "-", input=manifest, check=False).returncode == 0,
            30,
            "the API server to take the new endpoint",
        )
        kit.wait_for(
            lambda: _answer(gw.url, "after-restart") == "hello from the upstream",
            RECOVERY_BOUND,
            "the new endpoint to be reconciled and routed",
            interval=0.1,
        )
        recovered = time.monotonic() - applied
    finally:
        fault_cluster.kubectl("delete", "modelendpoint", "after-restart", "-n", faultkit.NAMESPACE,
                              "--wait=false", check=False)  # fmt: skip
        fault_cluster.kubectl("delete", "modelentry", "after-restart", "--wait=false", check=False)
        upstream.close()
    status = faultkit.ready(fault_cluster)  # the node agent kept the pods' status current too
    assert status is not None

    latencies = sorted(o.seconds for o in traffic.outcomes)
    figures = {
        "requests": len(traffic.outcomes),
        "failed": len(failed),
        "api_outage_s": round(outage, 1),
        "latency_max_s": round(latencies[-1], 2),
        "new_endpoint_routed_after_s": round(recovered, 1),
    }
    print("FAULT-FIGURES api-restart", json.dumps(figures))
