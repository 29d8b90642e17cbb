"""The operator, run as ``modelyard operator`` against the session's local control plane."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kit

ROOT = Path(__file__).resolve().parents[2]


class Operator(kit.Process):
    """A ``modelyard operator`` subprocess that tests can kill and restart."""

    def __init__(self, kubeconfig: Path, log: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.extra_args = extra_args
        """More ``modelyard operator`` flags (e.g. ``--registration-mode=off``)."""
        self.webhook_port = kit.free_port()
        self.metrics_port = kit.free_port()
        super().__init__(
            ["operator", "--kubeconfig", str(kubeconfig), "--namespace", "modelyard-system",
             "--webhook-port", str(self.webhook_port), "--metrics-port", str(self.metrics_port),
             *extra_args],
            log,
        )  # fmt: skip

    def metrics(self) -> str:
        """The /metrics text, or "" while the server is not up."""
        return kit.http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")[1]


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
