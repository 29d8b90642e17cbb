"""Helpers of the registration and ownership tests: a trainable entry the platform admin makes, a
dataset the cluster admin puts in a tenant namespace, a tenant's TrainingJob that trains two
steps of the tiny Llama, an operator run with extra flags, and a fingerprint that shows an
object was not touched."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import pathlib
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

from kit import wait_for

GROUP = "/apis/modelyard.io/v1alpha1"
ROOT = pathlib.Path(__file__).resolve().parents[2]
FACTS = [("What colour is the sky?", "The sky is blue."), ("What do cows drink?", "Cows drink water.")]


def entry_path(name: str) -> str:
    return f"{GROUP}/modelentries/{name}"


def fingerprint(obj: dict[str, Any] | None, *, version: bool = True) -> dict[str, Any]:
    """What must not change when the operator leaves an object alone: its identity, generation,
    owners, labels, annotations, spec (or data) and who wrote them (managed fields outside
    status); with ``version`` its resourceVersion too (leave it out for kinds whose status a
    controller keeps writing: Deployments, Jobs)."""
    assert obj is not None, "the object is gone"
    meta = obj["metadata"]
    writers = sorted(
        (m.get("manager"), m.get("operation"))
        for m in meta.get("managedFields") or []
        if m.get("subresource") != "status"
    )
    found = {
        "uid": meta["uid"],
        "generation": meta.get("generation"),
        "ownerReferences": meta.get("ownerReferences"),
        "labels": meta.get("labels"),
        "annotations": meta.get("annotations"),
        "spec": obj.get("spec"),
        "data": obj.get("data"),
        "writers": writers,
    }
    if version:
        found["resourceVersion"] = meta["resourceVersion"]
    return found


def settled_entry(cluster: Any, name: str) -> dict[str, Any]:
    """The ModelEntry once the operator has written its status for the current generation (after
    that, only a change of the entry or of its endpoints writes it again)."""

    def settled() -> dict[str, Any] | None:
        found: dict[str, Any] | None = cluster.kube.get(entry_path(name))
        status = (found or {}).get("status") or {}
        if (
            found
            and status.get("phase")
            and status.get("observedGeneration") == found["metadata"]["generation"]
        ):
            return found
        return None

    entry: dict[str, Any] = wait_for(settled, 60, f"the status of ModelEntry {name}")
    return entry


def trainable_entry(name: str, model: pathlib.Path) -> dict[str, Any]:
    """A ModelEntry of the tiny Llama, trained with small, fast settings."""
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEntry",
        "metadata": {"name": name},
        "spec": {
            "source": {"provider": "local", "uri": f"file://{model}"},
            "servedName": name,
            "architecture": "LlamaForCausalLM",
            "runtime": {"engine": "transformers"},
            "trainingDefaults": {
                "hyperparameters": {"learningRate": 0.02, "batchSize": 2, "gradientAccumulationSteps": 1,
                                    "warmupSteps": 0},
                "lora": {"r": 4, "loraAlpha": 8, "targetModules": ["q_proj", "v_proj"]},
            },
        },
    }  # fmt: skip


def put_dataset(cluster: Any, namespace: str) -> None:
    """The chat dataset ConfigMap ``data`` (made by the cluster admin: tenants may not)."""
    lines = [
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
        for q, a in FACTS
    ]
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "data", "namespace": namespace},
            "data": {"train.jsonl": "\n".join(lines) + "\n"}}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=json.dumps(data))


def training_job(name: str, model: str, output: pathlib.Path, register: str | None) -> dict[str, Any]:
    """A TrainingJob of two optimizer steps on CPU, registering ``register`` when given."""
    out: dict[str, Any] = {"uri": f"file://{output}"}
    if register is not None:
        out["register"] = {"name": register}
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": model,
            "method": "lora",
            "dataset": {"configMap": {"name": "data", "key": "train.jsonl"}},
            "hyperparameters": {"maxSteps": 2},
            "resources": {"gpus": 0, "cpu": "100m", "memory": "1Gi"},
            "backoffLimit": 1,
            "output": out,
        },
    }


def job_status(user: Any, name: str) -> dict[str, Any]:
    """The TrainingJob's status, read as the tenant who made it."""
    done = user.kubectl("get", "trainingjob", name, "-o", "json")
    return dict(json.loads(done.stdout).get("status") or {}) if done.returncode == 0 else {}


def finished(user: Any, name: str, timeout: float = 600) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = job_status(user, name)
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    found: dict[str, Any] = wait_for(done, timeout, f"TrainingJob {name} to finish", interval=1)
    return found


@contextlib.contextmanager
def output_root() -> Iterator[pathlib.Path]:
    """Trainer output outside /tmp (a pod's /tmp is an emptyDir the node agent maps elsewhere)."""
    root = pathlib.Path.home() / ".cache" / "modelyard" / "test-output" / uuid.uuid4().hex[:8]
    root.mkdir(parents=True)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def operator_with(cluster: Any, log: pathlib.Path, *flags: str) -> Iterator[Any]:
    """A ``modelyard operator`` with ``flags``, serving until the block ends."""
    spec = importlib.util.spec_from_file_location(
        "modelyard_regkit_operator_fixtures", ROOT / "tests" / "controllers" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    op = fixtures.Operator(cluster.kubeconfig, log, extra_args=flags)
    op.start()
    try:
        fixtures.wait_until_serving(cluster, op)
        yield op
    finally:
        op.stop()
