"""Fixtures for the fault tests: a cluster of their own, the operator, a tiny Llama endpoint, gateways.

The fault tests kill pods and restart the API server, so they run on a control plane of their
own (``own_cluster``: two CPU nodes, no GPUs needed by the tiny model) rather than the session's.
Everything in it is real: the operator and the gateway are ``modelyard`` processes, the
endpoint's two runtime pods are ``modelyard runtime`` processes started by the node agent from
the Deployment the operator built.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faultkit
import pytest

import kit

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE, ENTRY, SERVED, ENDPOINT = faultkit.NAMESPACE, faultkit.ENTRY, faultkit.SERVED, faultkit.ENDPOINT
HERE = Path(__file__).resolve().parent

# The cluster, operator and runtime pods are session fixtures (shared by the modules here) but
# are closed as soon as the run leaves this directory, not at the end of the whole session.
_leaving = contextlib.ExitStack()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or HERE not in nextitem.path.parents:
        _leaving.close()


@pytest.fixture(scope="session")
def fault_cluster(
    own_cluster: Callable[..., contextlib.AbstractContextManager[Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    nodes = ["node-a:0", "node-b:0"]
    with _leaving:
        cluster = _leaving.enter_context(own_cluster(tmp_path_factory.mktemp("fault-cluster"), nodes))
        cluster.kubectl("apply", "-f", str(ROOT / "crds"))
        for plural in ("modelentries", "modelendpoints", "trainingjobs"):
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.modelyard.io",
                            "--timeout=60s")  # fmt: skip
            kit.wait_for(
                lambda p=plural: cluster.kubectl("get", f"{p}.modelyard.io", "-A", check=False).returncode
                == 0,
                60,
                f"{plural} to be listable",
            )
        for namespace in ("modelyard-system", NAMESPACE):
            cluster.kubectl("create", "namespace", namespace)
        yield cluster


@pytest.fixture(scope="session")
def fault_operator(
    fault_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[kit.Process]:
    """``modelyard operator`` (webhook, Lease, metrics) on the fault cluster."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    metrics_port = kit.free_port()
    op = kit.Process(
        ["operator", "--kubeconfig", str(fault_cluster.kubeconfig), "--namespace", "modelyard-system",
         "--webhook-port", str(kit.free_port()), "--metrics-port", str(metrics_port)],
        log,
        {"KUBECONFIG": "/nonexistent"},  # --kubeconfig alone must do (and KUBECONFIG may name another)
    )  # fmt: skip
    op.start()
    _leaving.callback(op.stop)
    kit.wait_for(
        lambda: "holding the Lease" in op.tail(100_000)
        and fault_cluster.kubectl("get", "validatingwebhookconfiguration", "modelyard.io", check=False)
        .returncode == 0,
        90,
        "the operator to lead and register its webhook",
    )
    yield op
    op.stop()
    print(f"operator log: {log}", file=sys.stderr)


@pytest.fixture(scope="session")
def chat_endpoint(fault_cluster: Any, fault_operator: kit.Process, tiny_llama: Path) -> str:
    """The tiny Llama served as ``tiny-chat`` by two runtime pods; returns the served name."""
    entry = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {ENTRY}}}
spec:
  source: {{provider: local, uri: "file://{tiny_llama}"}}
  architecture: LlamaForCausalLM
  servedName: {SERVED}
"""
    fault_cluster.kubectl("apply", "-f", "-", input=entry + "---" + faultkit.endpoint_manifest())
    kit.wait_for(lambda: faultkit.ready(fault_cluster), 240, "the tiny Llama endpoint to be Ready")
    return SERVED


@pytest.fixture()
def start_gateway(
    fault_cluster: Any, tmp_path: Path
) -> Iterator[Callable[..., faultkit.Gateway]]:
    """``start_gateway(*flags)``: a ``modelyard gateway`` process, ready, stopped after the test."""
    started: list[faultkit.Gateway] = []

    def start(*flags: str, serving: str | None = SERVED) -> faultkit.Gateway:
        gw = faultkit.Gateway(fault_cluster.kubeconfig, tmp_path / f"gateway-{len(started)}.log", *flags)
        started.append(gw)
        gw.start()
        try:
            kit.wait_for(
                lambda: kit.http_get(f"{gw.url}/readyz")[0] == 200
                and (serving is None or serving in gw.models()),
                60,
                "the gateway to be ready",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; gateway log:\n{gw.tail()}") from None
        return gw

    yield start
    for gw in started:
        gw.stop()
        print(f"gateway log: {gw.log}", file=sys.stderr)
