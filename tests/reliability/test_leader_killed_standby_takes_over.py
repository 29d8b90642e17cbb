"""Two operator replicas: the leader SIGKILLed mid-rollout, the standby takes the Lease and converges.

This is the chart's ``operator.replicas: 2``: a second ``modelyard operator`` process waits for
the Lease while the first leads. The endpoint's env changes (``FAULT_MARK``), the leader is
killed once the rollout is under way, and the standby must take the Lease when it expires (it
is not released: the holder died), register its webhook, and finish the rollout and a further
change with no duplicate children. The handover time (kill to the Lease naming the standby) is
printed as a figure, not asserted: it is bounded by the Lease's 15 s plus one 5 s poll.
"""

from __future__ import annotations

import json
import time
from typing import Any

import faultkit
import pytest

import kit

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(480)]

NS = faultkit.NAMESPACE
LEASE = "/apis/coordination.k8s.io/v1/namespaces/modelyard-system/leases/modelyard-operator"


def _holder(cluster: Any) -> str:
    return str((cluster.kube.get(LEASE) or {}).get("spec", {}).get("holderIdentity") or "")


def _webhook_port(cluster: Any) -> str:
    url = "jsonpath={.webhooks[0].clientConfig.url}"
    found = cluster.kubectl("get", "validatingwebhookconfiguration", "modelyard.io", "-o", url, check=False)
    return found.stdout.rsplit(":", 1)[-1].split("/", 1)[0] if found.returncode == 0 else ""


def test_the_standby_takes_over_from_a_killed_leader_mid_rollout(
    fault_cluster: Any, fault_operator: kit.Process, chat_endpoint: str, tmp_path: Any
) -> None:
    kube = fault_cluster.kube
    kit.wait_for(lambda: faultkit.ready(fault_cluster), 240, "the endpoint Ready")
    kit.wait_for(lambda: _holder(fault_cluster), 60, "the leader to hold the Lease")
    leader = _holder(fault_cluster)

    standby_webhook = kit.free_port()
    standby = kit.Process(
        ["operator", "--kubeconfig", str(fault_cluster.kubeconfig), "--namespace", "modelyard-system",
         "--webhook-port", str(standby_webhook), "--metrics-port", str(kit.free_port())],
        tmp_path / "standby.log",
        {"KUBECONFIG": "/nonexistent"},
    )  # fmt: skip
    standby.start()
    try:
        kit.wait_for(
            lambda: "waiting for the Lease" in standby.tail(), 90, "the standby to wait for the Lease"
        )
        assert _holder(fault_cluster) == leader  # a standby does not steal a live Lease

        fault_cluster.kubectl("apply", "-f", "-", input=faultkit.endpoint_manifest(mark="s1"))

        at_kill = kit.wait_for(
            lambda: faultkit.rolling(fault_cluster, "s1"), 60, "the s1 rollout to begin", interval=0.05
        )
        fault_operator.kill()
        killed = time.monotonic()
        kit.wait_for(lambda: _holder(fault_cluster) not in ("", leader), 60, "the standby to take the Lease")
        handed_over = time.monotonic()
        successor = _holder(fault_cluster)
        assert "holding the Lease" in standby.tail(100_000)
        kit.wait_for(
            lambda: _webhook_port(fault_cluster) == str(standby_webhook),
            60,
            "the standby's webhook registered",
        )

        fault_cluster.kubectl("apply", "-f", "-", input=faultkit.endpoint_manifest(mark="s2"))
        endpoint_path = f"{faultkit.GROUP_PATH}/namespaces/{NS}/modelendpoints/{faultkit.ENDPOINT}"
        generation = kube.get(endpoint_path)["metadata"]["generation"]
        kit.wait_for(
            lambda: (
                (body := faultkit.ready(fault_cluster)) and body["status"]["observedGeneration"] == generation
            ),
            240,
            "Ready for the latest generation under the new leader",
        )
        converged = time.monotonic()

        pods = kit.wait_for(lambda: faultkit.settled(fault_cluster, "s2"), 120, "only the s2 pods left")
        deployments = faultkit.children(fault_cluster, f"/apis/apps/v1/namespaces/{NS}/deployments")
        services = faultkit.children(fault_cluster, f"/api/v1/namespaces/{NS}/services")
        assert [d["metadata"]["name"] for d in deployments] == [faultkit.ENDPOINT]
        assert [s["metadata"]["name"] for s in services] == [faultkit.ENDPOINT]
        replica_sets = faultkit.children(fault_cluster, f"/apis/apps/v1/namespaces/{NS}/replicasets")
        live = [rs for rs in replica_sets if rs["spec"]["replicas"]]
        assert [faultkit.mark(rs["spec"]["template"]) for rs in live] == ["s2"], "one ReplicaSet runs pods"
        figures = {
            "deployment_at_kill": {
                k: at_kill.get(k, 0) for k in ("replicas", "updatedReplicas", "readyReplicas")
            },
            "handover_s": round(handed_over - killed, 1),
            "converged_after_kill_s": round(converged - killed, 1),
            "pods": len(pods),
        }
        print("FAULT-FIGURES leader-handover", json.dumps(figures))
    finally:
        # the session's operator leads again for the tests after this one (the standby, stopped,
        # releases the Lease; the restarted operator gets a new identity)
        successor = _holder(fault_cluster)
        fault_operator.start()
        standby.stop()
    kit.wait_for(
        lambda: _holder(fault_cluster) not in ("", leader, successor),
        90,
        "the session's operator to lead again",
    )
