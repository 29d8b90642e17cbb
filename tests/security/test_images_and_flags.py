"""Who may choose images and flags (issue #14 item 9), as a tenant with only a tenant's RBAC.

- ``spec.image`` of endpoints and training jobs only under the operator setting
  ``allowedImagePrefixes`` (default: the configured runtime image only); the denial names it;
- engine arguments that change trust (``trustRemoteCode`` and the like) only for entries with
  ``spec.runtime.allowTrustRemoteCode: true``, which only the platform admin can set;
- objects that got past admission (the webhook was down) are refused by the operator itself:
  ``reason: ImageNotAllowed`` / ``EngineArgsNotAllowed``, and nothing runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit import wait_for

RUNTIME_IMAGE = "ghcr.io/modelyard/runtime:0.1.0"  # the operator's default --runtime-image
GROUP = "/apis/modelyard.io/v1alpha1"


@pytest.fixture(scope="module")
def entries(tenants: Any, operator: Any, tiny_llama: Path) -> Iterator[tuple[str, str]]:
    """Two servable, trainable entries made by the platform admin: one plain, one that allows
    trust-changing engine arguments."""
    tag = uuid.uuid4().hex[:6]
    plain, trusting = f"plain-{tag}", f"trusting-{tag}"
    for name, allow in ((plain, False), (trusting, True)):
        done = tenants.admin.apply({
            "apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEntry", "metadata": {"name": name},
            "spec": {"source": {"provider": "local", "uri": f"file://{tiny_llama}"}, "category": "text-llm",
                     "capabilities": {"inference": True, "training": True},
                     "runtime": {"engine": "vllm", "allowTrustRemoteCode": allow}},
        })  # fmt: skip
        assert done.returncode == 0, done.stderr
    yield plain, trusting
    tenants.admin.kubectl("delete", "modelentry", plain, trusting, "--ignore-not-found")


def _endpoint(namespace: str, model: str, **spec: Any) -> dict[str, Any]:
    """An endpoint serving ``model`` under a served name of its namespace's own, so that the two
    tenants' endpoints of one entry never meet served-name ownership."""
    return {
        "apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint",
        "metadata": {"name": f"ep-{uuid.uuid4().hex[:6]}", "namespace": namespace},
        "spec": {"model": model, "servedName": f"{model}-{namespace}", "replicas": 0,
                 "resources": {"gpus": 0}, **spec},
    }  # fmt: skip


def _training_job(namespace: str, model: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1", "kind": "TrainingJob",
        "metadata": {"name": f"tj-{uuid.uuid4().hex[:6]}", "namespace": namespace},
        "spec": {"model": model, "dataset": {"uri": "file:///data/train.jsonl"},
                 "output": {"uri": "file:///out"}, **spec},
    }  # fmt: skip


def test_an_image_outside_the_allowed_prefixes_is_denied_naming_the_setting(
    tenants: Any, entries: tuple[str, str]
) -> None:
    plain, _ = entries
    for image in ("evil.example/steal-prompts:1", f"{RUNTIME_IMAGE}-evil", "ghcr.io/modelyard/runtime:9.9"):
        denied = tenants.alice.apply(_endpoint(tenants.a, plain, image=image))
        assert denied.returncode != 0, image
        assert "spec.image" in denied.stderr and "allowedImagePrefixes" in denied.stderr, denied.stderr
        assert "operator.allowedImagePrefixes" in denied.stderr
    job = tenants.mallory.apply(_training_job(tenants.b, plain, image="evil.example/steal-data:1"))
    assert job.returncode != 0 and "allowedImagePrefixes" in job.stderr, job.stderr
    allowed = tenants.alice.apply(_endpoint(tenants.a, plain, image=RUNTIME_IMAGE))
    assert allowed.returncode == 0, allowed.stderr


def test_trust_changing_engine_args_need_an_entry_that_allows_them(
    tenants: Any, entries: tuple[str, str]
) -> None:
    plain, trusting = entries
    asked = [{"trustRemoteCode": True}, {"trust-remote-code": "true"}, {"toolParserPlugin": "/cache/p.py"},
             {"worker_extension_cls": "evil.Mixin"}]  # fmt: skip
    for args in asked:
        denied = tenants.mallory.apply(_endpoint(tenants.b, plain, engineArgs=args))
        assert denied.returncode != 0, args
        assert "spec.runtime.allowTrustRemoteCode" in denied.stderr and plain in denied.stderr, denied.stderr
    harmless = tenants.mallory.apply(_endpoint(tenants.b, plain, engineArgs={"trustRemoteCode": False}))
    assert harmless.returncode == 0, harmless.stderr
    allowed = tenants.mallory.apply(_endpoint(tenants.b, trusting, engineArgs={"trustRemoteCode": True}))
    assert allowed.returncode == 0, allowed.stderr
    # and a tenant cannot make an entry allow them
    assert not tenants.mallory.can_i("patch", "modelentries.modelyard.io")


def _webhooks(cluster: Any) -> list[Any]:
    """The out-of-cluster operator's webhooks (kopf manages configuration ``modelyard.io``)."""
    path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/modelyard.io"
    hooks: list[Any] = (cluster.kube.get(path) or {}).get("webhooks") or []
    return hooks


def _status(cluster: Any, plural: str, namespace: str, name: str) -> dict[str, Any]:
    found = cluster.kube.get(f"{GROUP}/namespaces/{namespace}/{plural}/{name}") or {}
    status: dict[str, Any] = found.get("status") or {}
    return status


def _refused(cluster: Any, plural: str, namespace: str, obj: dict[str, Any], reason: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        status = _status(cluster, plural, namespace, obj["metadata"]["name"])
        return status if status.get("reason") == reason else None

    refused: dict[str, Any] = wait_for(found, 120, f"{plural} {obj['metadata']['name']}: {reason}")
    return refused


def test_objects_that_got_past_admission_are_refused_by_the_operator(
    tenants: Any, entries: tuple[str, str], operator: Any, operator_ready_cluster: Any
) -> None:
    cluster = operator_ready_cluster
    plain, _ = entries
    operator.stop()  # a clean stop removes the out-of-cluster webhooks: admission is not asked
    wait_for(lambda: not _webhooks(cluster), 60, "the webhooks to go")
    image = _endpoint(tenants.a, plain, image="evil.example/steal-prompts:1", replicas=1)
    flags = _endpoint(tenants.a, plain, engineArgs={"trustRemoteCode": True}, replicas=1)
    job = _training_job(tenants.a, plain, image="evil.example/steal-data:1")
    for obj in (image, flags, job):
        done = tenants.alice.apply(obj)
        assert done.returncode == 0, done.stderr
    operator.start()
    try:
        image_status = _refused(cluster, "modelendpoints", tenants.a, image, "ImageNotAllowed")
        assert image_status["phase"] == "Failed" and "allowedImagePrefixes" in image_status["message"]
        flags_status = _refused(cluster, "modelendpoints", tenants.a, flags, "EngineArgsNotAllowed")
        message = flags_status["message"]
        assert "trustRemoteCode" in message and "allowTrustRemoteCode" in message
        job_status = _refused(cluster, "trainingjobs", tenants.a, job, "ImageNotAllowed")
        assert job_status["phase"] == "Failed"
        for kind, name in (("deployments", image), ("deployments", flags), ("jobs", job)):
            group = "batch/v1" if kind == "jobs" else "apps/v1"
            path = f"/apis/{group}/namespaces/{tenants.a}/{kind}/{name['metadata']['name']}"
            made = cluster.kube.get(path)
            assert made is None, f"{path} exists: {json.dumps(made)[:300]}"
    finally:
        wait_for(lambda: _webhooks(cluster), 120, "the webhooks back")
