"""A test module can start a cluster of its own beside the session's (``own_cluster``), and restart
its API server (fault tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def test_second_cluster_runs_beside_the_session_one(
    local_cluster: Any, own_cluster: Any, tmp_path: Path
) -> None:
    with own_cluster(tmp_path / "own", ["own-gpu:1:NVIDIA-L4"], fake_nodes=["own-fake:0"]) as own:
        names = sorted(n["metadata"]["name"] for n in own.kube.request("GET", "/api/v1/nodes")["items"])
        assert names == ["own-fake", "own-gpu"]
        assert own.kubeconfig != local_cluster.kubeconfig

        from modelyard.local import controlplane

        plane = controlplane.ControlPlane(own.state_dir)
        before = plane.pids()["apiserver"]
        plane.restart("apiserver", down_for=0.5, log=lambda msg: None)
        assert plane.pids()["apiserver"] != before
        assert len(own.kube.request("GET", "/api/v1/nodes")["items"]) == 2  # same port, same data
    session_nodes = local_cluster.kube.request("GET", "/api/v1/nodes")["items"]
    assert {n["metadata"]["name"] for n in session_nodes} == {"gpu-node-1", "gpu-node-2"}
