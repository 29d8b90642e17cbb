"""The operator, run as ``modelyard operator`` against the session's local control plane."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Operator:
    """A ``modelyard operator`` subprocess that tests can kill and restart."""

    def __init__(self, kubeconfig: Path, log: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.extra_args = extra_args
        """More ``modelyard operator`` flags (e.g. ``--registration-mode=off``)."""
        self.webhook_port = _free_port()
        self.metrics_port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "modelyard", "operator", "--kubeconfig", str(self.kubeconfig),
            "--namespace", "modelyard-system", "--webhook-port", str(self.webhook_port),
            "--metrics-port", str(self.metrics_port), *self.extra_args,
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
            )

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def metrics(self) -> str:
        """The /metrics text, or "" while the server is not up."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
            ) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError):
            return ""


def _wait_for_garbage_collector(cluster: Any) -> None:
    """kube-controller-manager's garbage collector learns new CRDs on its next discovery resync
    (up to ~30 s): until then it would not delete children of a ModelEndpoint. Delete an owner
    with a child until the child goes, so the tests start once owner references work."""
    ns = "modelyard-system"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        owner = cluster.kube.request(
            "POST",
            f"/apis/modelyard.io/v1alpha1/namespaces/{ns}/modelendpoints",
            {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint",
             "metadata": {"generateName": "gc-probe-"}, "spec": {"model": "gc-probe", "replicas": 0}},
        )  # fmt: skip
        name, uid = owner["metadata"]["name"], owner["metadata"]["uid"]
        ref = {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint", "name": name, "uid": uid}
        cluster.kube.request(
            "POST",
            f"/api/v1/namespaces/{ns}/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": [ref]}},
        )
        cluster.kube.request("DELETE", f"/apis/modelyard.io/v1alpha1/namespaces/{ns}/modelendpoints/{name}")
        until = time.monotonic() + 10
        while time.monotonic() < until:
            if cluster.kube.get(f"/api/v1/namespaces/{ns}/configmaps/{name}") is None:
                return
            time.sleep(0.5)
        with contextlib.suppress(Exception):  # the collector may have got there first (404)
            cluster.kube.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps/{name}")
    raise RuntimeError("the garbage collector never collected a ModelEndpoint's child")


@pytest.fixture(scope="session")
def operator_ready_cluster(local_cluster: Any) -> Any:
    """CRDs installed and listable, the operator's namespace, owner references collected."""
    local_cluster.kubectl("apply", "-f", str(ROOT / "crds"))
    for crd in ("modelentries", "modelendpoints", "trainingjobs"):
        local_cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{crd}.modelyard.io", "--timeout=60s"
        )
    for plural in ("modelentries", "modelendpoints", "trainingjobs"):  # storage ready, not only Established
        deadline = time.monotonic() + 60
        while local_cluster.kubectl("get", f"{plural}.modelyard.io", "-A", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{plural} cannot be listed")
            time.sleep(0.5)
    local_cluster.kubectl("create", "namespace", "modelyard-system", check=False)
    _wait_for_garbage_collector(local_cluster)
    return local_cluster


@pytest.fixture(scope="module")
def operator(operator_ready_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """One operator (with its webhook) per test module: stopped after it, so tests elsewhere that
    play the operator's part by hand (the gateway's) do not race a real one."""
    local_cluster = operator_ready_cluster
    op = Operator(local_cluster.kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
    op.start()
    wait_until_serving(local_cluster, op)
    yield op
    op.stop()
    print(f"operator log: {op.log}", file=sys.stderr)


def wait_until_serving(local_cluster: Any, op: Operator) -> None:
    """Until the operator holds the Lease, answers /metrics and its webhook is registered."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kopf registers its webhooks once it is up
        done = local_cluster.kubectl(
            "get",
            "validatingwebhookconfiguration",
            "modelyard.io",
            "-o",
            "jsonpath={.webhooks[*].name}",
            check=False,
        )
        leading = "holding the Lease" in op.log.read_text(errors="replace")
        if done.returncode == 0 and done.stdout.strip() and leading and op.metrics():
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"operator did not start; log:\n{op.log.read_text()[-3000:]}")
