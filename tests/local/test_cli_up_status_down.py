"""``modelyard local up/status/kubeconfig/down`` manage a background cluster with a node
agent process, independent of the test session's cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def _modelyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelyard", "local", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_up_starts_a_ready_cluster_that_down_stops(
    local_cluster: Any, tmp_path: Path, wait: Any
) -> None:
    from modelyard.local import controlplane, kube

    state = str(tmp_path / "cli-cluster")
    up = _modelyard("up", "--state-dir", state, "--node", "cli-node:2:NVIDIA-L4")
    try:
        assert up.returncode == 0, up.stderr
        kubeconfig = Path(up.stdout.strip())
        assert _modelyard("kubeconfig", "--state-dir", state).stdout.strip() == str(kubeconfig)
        status = _modelyard("status", "--state-dir", state)
        assert status.returncode == 0
        for component in ("etcd", "apiserver", "controller-manager", "scheduler", "agent"):
            assert f"{component}" in status.stdout and "running" in status.stdout
        client = kube.Kube(kubeconfig)
        node = client.request("GET", "/api/v1/nodes/cli-node")
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-L4"
        assert client.request("GET", "/version")["gitVersion"] == "v1.33.13"
        pids = controlplane.ControlPlane(Path(state)).pids()
    finally:
        down = _modelyard("down", "--state-dir", state)
    assert down.returncode == 0
    assert not any(controlplane.alive(pid) for pid in pids.values())
    assert _modelyard("status", "--state-dir", state).returncode == 1
