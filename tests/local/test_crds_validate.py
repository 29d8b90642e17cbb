"""The generated CRDs install on a real API server, which enforces their schemas."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.cluster

CRDS = Path(__file__).resolve().parents[2] / "crds"
INVALID_ENDPOINT = """
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {name: too-heavy}
spec:
  model: tiny-llama
  weight: 5000
  replicas: 1
"""


def test_crds_install_and_reject_an_out_of_range_weight(
    local_cluster: Any, namespace: str
) -> None:
    files = sorted(CRDS.glob("*.yaml"))
    if not files:
        pytest.skip("crds/ holds no CRDs yet")
    for path in files:
        applied = local_cluster.kubectl("apply", "--server-side", "-f", str(path), check=False)
        assert applied.returncode == 0, f"{path.name} rejected by the API server:\n{applied.stderr}"
    local_cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                          *[arg for path in files for arg in ("-f", str(path))])

    with pytest.raises(subprocess.CalledProcessError) as rejected:
        local_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=INVALID_ENDPOINT)
    assert "weight" in rejected.value.stderr
