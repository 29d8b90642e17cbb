"""The operator applies over, and deletes, only children it controls (an owner reference with the
very custom resource's uid). A Deployment, Service, ConfigMap or Job of the same name that the
cluster admin made in a tenant's namespace stays untouched, and the tenant's resource says
``OwnershipConflict``, naming it; an upstream endpoint deletes no same-named objects."""

from __future__ import annotations

import json
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from regkit import fingerprint, put_dataset, trainable_entry, training_job

from kit import models_server, wait_for

API = {"Deployment": "/apis/apps/v1", "Job": "/apis/batch/v1", "Service": "/api/v1", "ConfigMap": "/api/v1"}


def _path(kind: str, namespace: str, name: str) -> str:
    return f"{API[kind]}/namespaces/{namespace}/{kind.lower()}s/{name}"


def _foreign(cluster: Any, kind: str, namespace: str, name: str) -> dict[str, Any]:
    """A ``kind`` the cluster admin makes (no owner): a Deployment or Job that runs nothing."""
    meta = {"name": name, "namespace": namespace, "labels": {"app": "admin-made"}}
    template = {
        "metadata": {"labels": {"app": "admin-made"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "admin/app:1"}]},
    }
    bodies: dict[str, dict[str, Any]] = {
        "Deployment": {"apiVersion": "apps/v1", "spec": {
            "replicas": 0, "selector": {"matchLabels": {"app": "admin-made"}},
            "template": {**template, "spec": {"containers": template["spec"]["containers"]}}}},
        "Service": {"apiVersion": "v1", "spec": {"selector": {"app": "admin-made"}, "ports": [{"port": 80}]}},
        "ConfigMap": {"apiVersion": "v1", "data": {"config.json": '{"admin": true}'}},
        "Job": {"apiVersion": "batch/v1", "spec": {"suspend": True, "template": template}},
    }  # fmt: skip
    obj = {"kind": kind, "metadata": meta, **bodies[kind]}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    found: dict[str, Any] = wait_for(lambda: _settled(cluster.kube.get(_path(kind, namespace, name))), 60,
                                     f"the {kind}'s controller to take it in")  # fmt: skip
    return found


def _settled(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """``obj`` once its own controller is done with it (the Deployment controller annotates the
    revision, the Job controller marks it suspended), so what changes later is someone else."""
    if obj is None:
        return None
    status = obj.get("status") or {}
    if obj["kind"] == "Deployment" and status.get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    if obj["kind"] == "Job" and not any(c.get("type") == "Suspended" for c in status.get("conditions") or []):
        return None
    return obj


def _status(user: Any, kind: str, name: str) -> dict[str, Any]:
    done = user.kubectl("get", kind, name, "-o", "json")
    return dict(json.loads(done.stdout).get("status") or {}) if done.returncode == 0 else {}


def _conflict(user: Any, kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: (s := _status(user, kind, name)).get("reason") == "OwnershipConflict" and s,
        180,  # the module's first reconcile also waits for the operator and the entry: seen > 60 s
        f"{kind} {name} to report OwnershipConflict",
    )
    return found


@pytest.fixture(scope="module")
def entry(operator: Any, tenants: Any, tiny_llama: pathlib.Path) -> Iterator[str]:
    """A servable, trainable entry of the platform admin's."""
    name = f"own-{uuid.uuid4().hex[:6]}"
    assert tenants.admin.apply(trainable_entry(name, tiny_llama)).returncode == 0
    yield name
    tenants.admin.kubectl("delete", "modelentry", name, "--ignore-not-found")


@pytest.fixture
def upstream() -> Iterator[str]:
    with models_server() as url:
        yield url


def _endpoint(name: str, model: str) -> dict[str, Any]:
    return {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint", "metadata": {"name": name},
            "spec": {"model": model, "resources": {"gpus": 0, "cpu": "100m", "memory": "1Gi"}}}  # fmt: skip


def test_an_endpoint_named_like_a_foreign_deployment_leaves_it_untouched(tenants: Any, entry: str) -> None:
    cluster = tenants.alice.cluster
    before = {kind: fingerprint(_foreign(cluster, kind, tenants.a, "web"), version=kind == "Service")
              for kind in ("Deployment", "Service")}  # fmt: skip
    done = tenants.alice.apply(_endpoint("web", entry))
    assert done.returncode == 0, done.stderr
    status = _conflict(tenants.alice, "modelendpoint", "web")
    assert status["phase"] == "Pending"
    assert f"Deployment {tenants.a}/web already exists and is not this ModelEndpoint's" in status["message"]
    assert f"Service {tenants.a}/web already exists" in status["message"]
    for kind in ("Deployment", "Service"):
        after = fingerprint(cluster.kube.get(_path(kind, tenants.a, "web")), version=kind == "Service")
        assert after == before[kind], kind


def test_an_upstream_endpoint_never_deletes_a_foreign_deployment_or_service(
    tenants: Any, entry: str, upstream: str
) -> None:
    cluster = tenants.alice.cluster
    proxy = f"proxy-{uuid.uuid4().hex[:6]}"
    assert tenants.admin.apply({
        "apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEntry", "metadata": {"name": proxy},
        "spec": {"source": {"provider": "upstream"}, "servedName": proxy, "category": "text-llm",
                 "runtime": {"engine": "upstream"}, "upstream": {"baseUrl": upstream, "model": "gpt-4o"}},
    }).returncode == 0  # fmt: skip
    try:
        before = {kind: fingerprint(_foreign(cluster, kind, tenants.a, "api"), version=kind == "Service")
                  for kind in ("Deployment", "Service")}  # fmt: skip
        assert tenants.alice.apply(_endpoint("api", proxy)).returncode == 0
        status = wait_for(
            lambda: (s := _status(tenants.alice, "modelendpoint", "api")).get("phase") == "Ready" and s,
            60,
            "the upstream endpoint Ready",
        )
        assert status["reason"] == "UpstreamAnswers"
        # A few more reconciles: the upstream endpoint is reconciled on every change of its own.
        tenants.alice.kubectl("annotate", "modelendpoint", "api", "example.com/touch=1")
        wait_for(lambda: _status(tenants.alice, "modelendpoint", "api").get("phase") == "Ready", 30, "Ready")
        for kind in ("Deployment", "Service"):
            after = fingerprint(cluster.kube.get(_path(kind, tenants.a, "api")), version=kind == "Service")
            assert after == before[kind], kind
    finally:
        tenants.admin.kubectl("delete", "modelentry", proxy, "--ignore-not-found")


def test_a_training_job_never_follows_a_foreign_job(tenants: Any, entry: str, tmp_path: pathlib.Path) -> None:
    cluster = tenants.mallory.cluster
    put_dataset(cluster, tenants.b)
    before = fingerprint(_foreign(cluster, "Job", tenants.b, "batch"), version=False)
    done = tenants.mallory.apply(training_job("batch", entry, tmp_path / "out", None))
    assert done.returncode == 0, done.stderr
    status = _conflict(tenants.mallory, "trainingjob", "batch")
    assert status["message"].startswith(f"Job {tenants.b}/batch already exists and is not this TrainingJob's")
    assert fingerprint(cluster.kube.get(_path("Job", tenants.b, "batch")), version=False) == before
