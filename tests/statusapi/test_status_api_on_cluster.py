"""The status API fed from a real control plane: entries and endpoints applied with kubectl
reach the view through a list+watch loop (what the operator's kopf event handlers do), and the
REST contract holds over them: filters, an id with a slash, an unknown id, both validations,
the endpoints serving a model, and a status change arriving live."""

from __future__ import annotations

import json
import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kit import wait_for
from modelyard import statusapi
from statusapi.conftest import Api

pytestmark = pytest.mark.cluster

ROOT_CRDS = pathlib.Path(__file__).resolve().parents[2] / "crds"
GROUP_PATH = "/apis/modelyard.io/v1alpha1"
TRAINING = "/api/v1/registry/validate/training"
INFERENCE = "/api/v1/registry/validate/inference"
PLURALS = {"modelentries": "ModelEntry", "modelendpoints": "ModelEndpoint", "trainingjobs": "TrainingJob"}


class ClusterFeed:
    """List, then watch, each kind into a Cache, on daemon threads, until stopped."""

    def __init__(self, kube: Any, view: statusapi.Cache) -> None:
        self.kube, self.view = kube, view
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(p,), daemon=True) for p in PLURALS]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self, plural: str) -> None:
        kind, path = PLURALS[plural], f"{GROUP_PATH}/{plural}"
        while not self.stopped.is_set():
            listed = self.kube.request("GET", path)
            self.view.replace(kind, [{**o, "kind": kind} for o in listed["items"]])
            version = listed["metadata"]["resourceVersion"]
            try:
                for event in self.kube.watch(path, version, timeout=5):
                    if self.stopped.is_set():
                        return
                    obj = {**event["object"], "kind": kind}
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.view.upsert(obj)
                    elif event["type"] == "DELETED":
                        meta = obj["metadata"]
                        self.view.delete(kind, meta.get("namespace"), meta["name"])
                    elif event["type"] == "ERROR":
                        break
            except Exception:  # a dropped watch: list again
                time.sleep(0.2)


@pytest.fixture()
def crds(local_cluster: Any) -> None:
    local_cluster.kubectl("apply", "-f", str(ROOT_CRDS))
    for plural in PLURALS:
        local_cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{plural}.modelyard.io", "--timeout=60s"
        )

        def listable(p: str = plural) -> bool:
            return bool(local_cluster.kubectl("get", f"{p}.modelyard.io", "-A", check=False).returncode == 0)

        wait_for(listable, 60, f"{plural} listable")


@pytest.fixture()
def fed(local_cluster: Any, crds: None, serve: Callable[..., Api]) -> Iterator[tuple[statusapi.Cache, Api]]:
    view = statusapi.Cache()
    feed = ClusterFeed(local_cluster.kube, view)
    feed.start()
    try:
        yield view, serve(view)
    finally:
        feed.stopped.set()


def test_registry_rest_contract_over_cluster_objects(
    local_cluster: Any, namespace: str, fed: tuple[statusapi.Cache, Api]
) -> None:
    view, api = fed
    tag = f"statusapi-{namespace}"
    chat, embed = f"{namespace}-chat", f"{namespace}-embed"
    served = f"team-{namespace}/chat-1b"
    manifest = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {chat}}}
spec:
  source: {{provider: huggingface, repo: {served}}}
  displayName: Team chat 1B
  description: a chat model for the status API test
  category: text-llm
  architecture: LlamaForCausalLM
  parameters: 1.1B
  tags: [{tag}, small]
  requirements: {{minVramGb: 3, recommendedVramGb: 4}}
  capabilities: {{training: true, inference: true, streaming: true}}
  runtime: {{engine: vllm}}
  inferenceDefaults: {{maxModelLen: 2048}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {embed}}}
spec:
  source: {{provider: huggingface, repo: team-{namespace}/embed}}
  category: embedding
  tags: [{tag}]
  requirements: {{minVramGb: 1}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: chat, namespace: {namespace}}}
spec: {{model: {chat}, weight: 50, replicas: 0}}
"""
    try:
        applied = local_cluster.kubectl("apply", "-f", "-", input=manifest, check=False)
        assert applied.returncode == 0, applied.stderr

        # A filter, over objects that came from the API server.
        listed = wait_for(
            lambda: (b := api.get("/api/v1/registry/models", tag=tag)[1])["total"] == 2 and b,
            15, "both entries in the status API",
        )  # fmt: skip
        assert {m["entry"] for m in listed["data"]} == {chat, embed}
        _, embeddings = api.get("/api/v1/registry/models", tag=tag, category="embedding")
        assert [m["entry"] for m in embeddings["data"]] == [embed]

        # An id with a slash; the endpoint serving it.
        wait_for(
            lambda: api.get(f"/api/v1/registry/models/{served}")[1]["data"]["endpoints"], 15, "the endpoint"
        )
        status, detail = api.get(f"/api/v1/registry/models/{served}")
        assert status == 200 and detail["data"]["entry"] == chat
        assert detail["data"]["requirements"]["min_vram_gb"] == 3
        assert [(e["namespace"], e["name"]) for e in detail["data"]["endpoints"]] == [(namespace, "chat")]
        _, deployments = api.get(f"/api/v1/registry/models/{served}/deployments")
        assert deployments["total"] == 1

        # An unknown id.
        status, missing = api.get(f"/api/v1/registry/models/team-{namespace}/nope")
        assert status == 404 and missing == {
            "success": False,
            "error": {"code": "not_found", "message": missing["error"]["message"]},
        }

        # Both validations.
        _, training = api.post(TRAINING, {"model_id": served, "method": "qlora"})
        assert training["data"]["is_valid"] is True
        _, untrainable = api.post(TRAINING, {"model_id": embed})
        assert untrainable["data"]["is_valid"] is False
        _, fits = api.post(
            INFERENCE,
            {"model_id": served, "gpu_type": "NVIDIA-L4", "gpu_count": 1},
        )
        assert fits["data"]["fits"] is True
        _, too_small = api.post(INFERENCE, {"model_id": served, "gpu_memory_gb": 2})
        assert too_small["data"]["fits"] is False and "3 GiB" in too_small["data"]["error_message"]

        # A status written to the API server shows up (whoever wrote it: this test, or an operator
        # that happens to run in this session).
        patch = {"status": {"phase": "Ready", "replicas": 0, "readyReplicas": 0, "url": "http://chat:8000"}}
        local_cluster.kubectl(
            "patch", "modelendpoint", "chat", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps(patch),
        )  # fmt: skip

        def mirrored() -> bool:
            cluster_obj = local_cluster.kube.get(f"{GROUP_PATH}/namespaces/{namespace}/modelendpoints/chat")
            phase = (cluster_obj.get("status") or {}).get("phase") or "Unknown"
            rows = api.get("/api/v1/endpoints", namespace=namespace)[1]["data"]
            return bool(rows) and rows[0]["phase"] == phase

        wait_for(mirrored, 15, "the endpoint's phase mirrored")
    finally:
        local_cluster.kubectl("delete", "modelentry", chat, embed, "--ignore-not-found", check=False)
    wait_for(lambda: api.get("/api/v1/registry/models", tag=tag)[1]["total"] == 0, 15, "entries gone")
    assert view.get("ModelEntry", None, chat) is None
