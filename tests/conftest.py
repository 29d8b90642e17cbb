"""Shared fixtures: one real local Kubernetes control plane per test session.

``local_cluster`` builds (or reuses from ~/.cache/modelyard) the control plane binaries,
starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler in a temporary
state directory, and runs the node agent in this process (so tests can see pod process
ids). ``kubectl`` and ``helm`` are put first on PATH and KUBECONFIG points at the admin
kubeconfig. Each test that wants a namespace gets a fresh one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import kit

NODES = ("gpu-node-1:1:NVIDIA-H100-80GB-HBM3", "gpu-node-2:2:NVIDIA-A100-SXM4-80GB")


# `make test-fast` (the edit loop) runs `-m "not cluster and not model"`; `make test` runs all.
# A test is marked by what it asks for, so a new test needs no marker of its own: any fixture
# that leads to a control plane makes it `cluster`; any that builds or loads a model makes it
# `model`. A test that starts a model server without such a fixture says `pytest.mark.model`.
CLUSTER_FIXTURES = frozenset({"local_cluster", "own_cluster"})
MODEL_FIXTURES = frozenset({"tiny_llama", "tiny_model", "models_dir", "minilm_dir"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & CLUSTER_FIXTURES:
            item.add_marker(pytest.mark.cluster)
        if used & MODEL_FIXTURES:
            item.add_marker(pytest.mark.model)


@dataclass
class LocalCluster:
    """What the session fixture hands out."""

    kubeconfig: Path
    state_dir: Path
    bin_dir: Path
    kube: Any  # modelyard.local.kube.Kube
    agent: Any  # modelyard.local.nodeagent.NodeAgent

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> (
        subprocess.CompletedProcess[str]
    ):
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input, capture_output=True, text=True, check=check, timeout=120,
        )


_clusters_started = 0


@contextlib.contextmanager
def start_local_cluster(state_dir: Path, nodes: Sequence[str] = NODES, *,
                        fake_nodes: Sequence[str] = ()) -> Iterator[LocalCluster]:
    """A local control plane of its own in ``state_dir``, with the node agent run in this process.

    For tests that must not share the session cluster: ones that restart the API server,
    install the chart's in-cluster operator, or fill the cluster with fake pods. ``nodes`` and
    ``fake_nodes`` are ``NAME:GPUS:TYPE`` specs; pods on fake nodes run no process, they are only
    marked Running and Ready. Each cluster gets its own pod CIDR, so two can run side by side.
    """
    global _clusters_started
    _clusters_started += 1
    pod_cidr = f"127.{10 + (os.getpid() + 37 * _clusters_started) % 200}.0.0/16"
    from modelyard.local import controlplane, kube, nodeagent

    bin_dir = kit.local_binaries()
    venv_bin = Path(sys.executable).parent
    os.environ["PATH"] = os.pathsep.join([str(bin_dir), str(venv_bin), os.environ["PATH"]])
    plane = controlplane.ControlPlane(state_dir)
    try:
        plane.up(agent_args=None, timeout=120, log=lambda msg: print(msg, file=sys.stderr))
    except BaseException:
        plane.down(grace=5, log=lambda msg: None)
        raise
    agent = nodeagent.NodeAgent(
        plane.kubeconfig,
        [*(nodeagent.NodeSpec.parse(n) for n in nodes),
         *(nodeagent.NodeSpec.parse(n, fake=True) for n in fake_nodes)],
        state_dir / "pods", pod_cidr=pod_cidr, backoff=(1.0, 10.0),
    )
    try:
        agent.start()
        client = kube.Kube(plane.kubeconfig)

        def nodes_ready() -> bool:
            items = client.request("GET", "/api/v1/nodes")["items"]
            return len(items) == len(nodes) + len(fake_nodes) and not any(
                n["spec"].get("taints") for n in items)

        kit.wait_for(nodes_ready, 60, "nodes Ready without not-ready taints")
        yield LocalCluster(plane.kubeconfig, state_dir, bin_dir, client, agent)
    finally:
        agent.stop(grace=2)
        plane.down(grace=10, log=lambda msg: None)


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The session's cluster (nodes ``NODES``); ``KUBECONFIG`` points at it."""
    with start_local_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        yield cluster


@pytest.fixture(scope="session")
def own_cluster() -> Callable[..., contextlib.AbstractContextManager[LocalCluster]]:
    """``with own_cluster(state_dir, nodes, fake_nodes=...) as cluster:`` (see
    :func:`start_local_cluster`) for a module that needs a cluster of its own."""
    return start_local_cluster


@pytest.fixture(scope="session")
def kubeconfig(local_cluster: LocalCluster) -> Path:
    return local_cluster.kubeconfig


@pytest.fixture(scope="session")
def api_client(local_cluster: LocalCluster) -> Any:
    """A ``kubernetes.client.ApiClient`` for the session cluster."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(local_cluster.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture()
def namespace(local_cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount), deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube = local_cluster.kube
    kube.request("POST", "/api/v1/namespaces",
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    kit.wait_for(lambda: kube.get(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30,
                 f"the default ServiceAccount in {name}")
    yield name
    kube.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="session")
def tiny_llama() -> Iterator[Path]:
    """A tiny Llama (:func:`modelyard.local.tinymodels.build_llama`), built once per session under
    ~/.cache/modelyard/test-models, not /tmp: the node agent maps a pod's /tmp (an emptyDir) to a
    directory of its own, so runtime and trainer pods could not read it there."""
    from modelyard.local import tinymodels

    root = Path.home() / ".cache" / "modelyard" / "test-models" / uuid.uuid4().hex[:8]
    yield tinymodels.build_llama(root / "llama")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def wait() -> Callable[[Callable[[], Any], float, str], Any]:
    """``wait(predicate, timeout, what)``: poll until truthy, return that value."""
    return kit.wait_for
