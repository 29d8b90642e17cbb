"""Helm (built from its Go module) installs a chart into the local cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.cluster

CHART = Path(__file__).parent / "charts" / "hello"


def test_helm_installs_a_chart(local_cluster: Any, namespace: str, wait: Any) -> None:
    result = subprocess.run(
        [str(local_cluster.bin_dir / "helm"), "install", "hello", str(CHART),
         "--namespace", namespace, "--kubeconfig", str(local_cluster.kubeconfig),
         "--set", "message=from-helm", "--wait", "--timeout", "60s"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "STATUS: deployed" in result.stdout
    config = local_cluster.kube.request(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps/hello-config")
    assert config["data"]["message"] == "from-helm"
    releases = subprocess.run(
        [str(local_cluster.bin_dir / "helm"), "list", "-n", namespace, "-q",
         "--kubeconfig", str(local_cluster.kubeconfig)],
        capture_output=True, text=True, check=True,
    )
    assert releases.stdout.split() == ["hello"]
