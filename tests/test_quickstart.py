"""The README's first command, end to end: ``modelyard quickstart`` on a cluster of its own.

Run three times on one state dir. The first run starts the control plane, installs the chart,
builds the tiny chat model (or reuses the one in the modelyard cache) and waits for both
endpoints; the second reuses all of it (``helm upgrade`` to revision 2); the third comes after
the cluster was stopped (as ``make demo-down`` does) and ends with ``--down``. Each must print
the reply the tiny model was taught (greedy decoding through the gateway) and the embedding's
dimension, and exit 0, without printing the API key. Between the first two, an endpoint whose
model cannot load must end the wait with its message and its pod's log tail.
"""

from __future__ import annotations

import dataclasses
import io
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kit

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(1500)]

STEP = re.compile(r"^\[ *\d+\.\ds\] ==> ", re.MULTILINE)


def _quickstart(state_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", "quickstart", "--state-dir", str(state_dir), *extra],
        capture_output=True, text=True, timeout=700,
    )  # fmt: skip
    print(done.stdout[-6000:], done.stderr[-3000:], sep="\n")
    return done


def _a_model_that_cannot_load_fails_with_its_log(plane: Any, tmp_path: Path) -> None:
    """On the quickstart's cluster (in-cluster operator from the chart): an endpoint whose model
    directory does not exist ends the wait with its status message and its pod's log tail."""
    from modelyard.api import wire
    from modelyard.local import kube
    from modelyard.quickstart import cluster, manifests, models, progress

    broken = dataclasses.replace(
        manifests.chat_model(tmp_path / "no-such-model"), entry="quickstart-broken", endpoint="broken",
        served_name="broken", gpus=0,
    )  # fmt: skip
    client = kube.Kube(plane.kubeconfig)
    out = io.StringIO()
    show = progress.Progress(out)
    models.apply_all(client, [manifests.model_entry(broken), manifests.model_endpoint(broken)], show)
    with pytest.raises(cluster.QuickstartError) as failed:
        models.wait_ready(plane, [broken], show, timeout=300, failed_grace=0)
    print(out.getvalue(), failed.value, sep="\n")
    message = str(failed.value)
    assert message.startswith("ModelEndpoint quickstart/broken failed: ")
    assert "exit code" in message and "last lines of its pod's log:" in message
    assert "no-such-model" in message.split("last lines of its pod's log:")[1]
    assert "ModelEndpoint broken: Failed" in out.getvalue()
    base = f"/apis/{wire.API_VERSION}"
    client.request("DELETE", f"{base}/namespaces/{manifests.NAMESPACE}/modelendpoints/broken")
    client.request("DELETE", f"{base}/modelentries/quickstart-broken")


def test_quickstart_answers_through_the_gateway_reruns_and_restarts(tmp_path: Path) -> None:
    from modelyard.local import controlplane
    from modelyard.quickstart import manifests

    kit.local_binaries()
    state_dir = tmp_path / "quickstart"
    plane = controlplane.ControlPlane(state_dir)
    try:
        first = _quickstart(state_dir)
        assert first.returncode == 0, first.stdout[-3000:]
        out = first.stdout
        assert "starting a local cluster" in out and "STATUS: deployed" in out and "REVISION: 1" in out
        assert "ModelEndpoint chat: Ready (Available) ready 1/1" in out
        assert "ModelEndpoint embeddings: Ready (Available) ready 1/1" in out
        # The tiny model was taught one reply; greedy decoding through the gateway must give it back.
        assert f"chat answer (tiny-chat): {manifests.REPLY!r}" in out
        assert re.search(r"^usage: prompt \d+, completion \d+, total \d+ tokens$", out, re.MULTILINE)
        assert "embedding (all-minilm-l6-v2): dimension 384" in out
        components = plane.pids()
        assert plane.running() and set(components) >= {"etcd", "apiserver", "agent"}
        assert len(STEP.findall(out)) >= 8, "one timed line per step"
        key = (state_dir / "api-key").read_text().strip()
        assert key not in out + first.stderr, "the API key was printed"
        assert "kubectl get modelyard -A" in out and f"modelyard local down --state-dir {state_dir}" in out

        _a_model_that_cannot_load_fails_with_its_log(plane, tmp_path)

        second = _quickstart(state_dir)
        assert second.returncode == 0, second.stdout[-3000:]
        again = second.stdout
        assert "local cluster already running" in again and "REVISION: 2" in again
        assert "tiny chat model already built" in again
        assert f"chat answer (tiny-chat): {manifests.REPLY!r}" in again
        assert "embedding (all-minilm-l6-v2): dimension 384" in again
        assert plane.pids() == components

        # Stopped (`make demo-down`), then run again: the same etcd data, new pod processes.
        plane.down(grace=10, log=lambda msg: None)
        third = _quickstart(state_dir, "--down")
        assert third.returncode == 0, third.stdout[-3000:]
        after = third.stdout
        assert "restarting the local cluster" in after and "REVISION: 3" in after
        assert "pods the last stop left terminated" in after
        assert "ModelEndpoint chat: Ready (Available) ready 1/1" in after
        assert f"chat answer (tiny-chat): {manifests.REPLY!r}" in after
        assert "stopping the cluster (--down)" in after
        port = plane.state()["ports"]["apiserver"]
        with pytest.raises(OSError):  # the API server is gone, not only forgotten
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        plane.down(grace=10, log=lambda msg: None)
