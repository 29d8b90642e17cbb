"""The operator SIGKILLed in the middle of a rollout converges after a restart, with no duplicates.

The tiny Llama endpoint's env changes (``FAULT_MARK`` v1 -> v2): the operator applies the new
Deployment and the pods start rolling. The operator is killed right then, the spec changes
again (v3) while no operator runs, and a new operator process starts (it waits for the dead
one's Lease to expire). It must finish the job: one Deployment and one Service, the old
ReplicaSets scaled to zero with no pods left, status Ready for the latest generation, and the
v3 environment in the running runtime processes themselves.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import faultkit
import pytest

import kit

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(420)]

NS = faultkit.NAMESPACE
ROLLOUT_FIELDS = ("replicas", "updatedReplicas", "readyReplicas")


def _process_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if item)


def test_operator_killed_mid_rollout_converges_without_duplicates(
    fault_cluster: Any, fault_operator: kit.Process, chat_endpoint: str
) -> None:
    kube = fault_cluster.kube
    kit.wait_for(lambda: faultkit.ready(fault_cluster), 240, "the endpoint Ready")
    deployment_path = f"/apis/apps/v1/namespaces/{NS}/deployments/{faultkit.ENDPOINT}"
    assert faultkit.mark(kube.get(deployment_path)["spec"]["template"]) != "v2"

    fault_cluster.kubectl("apply", "-f", "-", input=faultkit.endpoint_manifest(mark="v2"))
    at_kill = kit.wait_for(
        lambda: faultkit.rolling(fault_cluster, "v2"), 60, "the v2 rollout to begin", interval=0.05
    )
    fault_operator.kill()  # new pods starting (the model takes seconds to load), old ones serving
    assert (
        at_kill.get("updatedReplicas", 0) < 2
        or at_kill.get("readyReplicas", 0) < 2
        or (at_kill.get("replicas", 0) > 2)
    ), f"the rollout had already finished: {at_kill}"
    fault_cluster.kubectl("apply", "-f", "-", input=faultkit.endpoint_manifest(mark="v3"))
    endpoint_path = f"{faultkit.GROUP_PATH}/namespaces/{NS}/modelendpoints/{faultkit.ENDPOINT}"
    generation = kube.get(endpoint_path)["metadata"]["generation"]
    time.sleep(2)
    assert faultkit.mark(kube.get(deployment_path)["spec"]["template"]) == "v2"  # nobody applied v3 yet

    restarted = time.monotonic()
    fault_operator.start()
    converged = kit.wait_for(
        lambda: (
            (body := faultkit.ready(fault_cluster))
            and body["status"]["observedGeneration"] == generation
            and time.monotonic()
        ),
        240,
        "Ready for the latest generation",
    )

    deployments = faultkit.children(fault_cluster, f"/apis/apps/v1/namespaces/{NS}/deployments")
    services = faultkit.children(fault_cluster, f"/api/v1/namespaces/{NS}/services")
    assert [d["metadata"]["name"] for d in deployments] == [faultkit.ENDPOINT]
    assert [s["metadata"]["name"] for s in services] == [faultkit.ENDPOINT]
    assert faultkit.mark(deployments[0]["spec"]["template"]) == "v3"

    pods = kit.wait_for(lambda: faultkit.settled(fault_cluster, "v3"), 90, "the old pods to be gone")
    replica_sets = faultkit.children(fault_cluster, f"/apis/apps/v1/namespaces/{NS}/replicasets")
    live = [rs for rs in replica_sets if rs["spec"]["replicas"]]
    assert [faultkit.mark(rs["spec"]["template"]) for rs in live] == ["v3"], "one ReplicaSet runs pods"
    assert live[0]["status"].get("readyReplicas") == 2
    owner = {p["metadata"]["ownerReferences"][0]["uid"] for p in pods}
    assert owner == {live[0]["metadata"]["uid"]}
    assert all(rs["status"].get("replicas", 0) == 0 for rs in replica_sets if rs not in live)

    # the new spec is live in the runtime processes themselves
    pids = fault_cluster.agent.pids()
    for pod in pods:
        (pid,) = pids[f"{NS}/{pod['metadata']['name']}"]
        assert _process_env(pid)["FAULT_MARK"] == "v3"

    figures = {
        "deployment_at_kill": {k: at_kill.get(k, 0) for k in ROLLOUT_FIELDS},
        "converged_after_restart_s": round(converged - restarted, 1),
        "replica_sets": len(replica_sets),
        "pods": len(pods),
    }
    print("FAULT-FIGURES operator-restart", json.dumps(figures))
