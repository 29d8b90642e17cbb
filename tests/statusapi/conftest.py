"""Fixtures for the status API: a Cache filled from the built-in catalog plus a few endpoints and
a training job, served on loopback by a real aiohttp server in a background loop, and a small
synchronous client that returns (status, JSON body)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import requests

from kit import Loop
from modelyard import statusapi
from modelyard.registry import catalog, manifests

T = TypeVar("T")
GROUP = "modelyard.io/v1alpha1"


def endpoint(
    name: str,
    model: str,
    *,
    namespace: str = "prod",
    weight: int = 100,
    phase: str | None = "Ready",
    replicas: int = 1,
    ready: int | None = None,
    **status: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": GROUP,
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace, "managedFields": [{"manager": "kubectl"}]},
        "spec": {"model": model, "weight": weight, "replicas": replicas, "resources": {"gpus": 1}},
    }
    if phase is not None:
        ready_replicas = ready if ready is not None else (replicas if phase == "Ready" else 0)
        obj["status"] = {
            "phase": phase,
            "replicas": replicas,
            "readyReplicas": ready_replicas,
            "url": f"http://{name}.{namespace}.svc:8000",
            **status,
        }
    return obj


def training_job(name: str, model: str, phase: str, **progress: Any) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "model": model,
            "method": "qlora",
            "dataset": {"uri": "pvc://data/train.jsonl"},
            "output": {"uri": "pvc://out/ft"},
        },
        "status": {"phase": phase, "progress": progress},
    }


def local_entry(uri: str, served: str | None = None) -> dict[str, Any]:
    """The Valid ModelEntry ``tiny-local`` of a local Llama whose config.json only the operator
    reads: its size (1.1B parameters) and memory (3 GB minimum, 4 recommended) are in its status."""
    spec: dict[str, Any] = {"source": {"provider": "local", "uri": uri}, "architecture": "LlamaForCausalLM"}
    status: dict[str, Any] = {
        "phase": "Valid",
        "estimate": {"parameters": 1_100_048_384, "minVramGb": 3.0},
        "requirements": {"minVramGb": 3.0, "recommendedVramGb": 4.0},
    }
    if served is not None:
        spec["servedName"] = status["servedName"] = served
    return {
        "apiVersion": GROUP,
        "kind": "ModelEntry",
        "metadata": {"name": "tiny-local"},
        "spec": spec,
        "status": status,
    }


def builtin_entries() -> list[dict[str, Any]]:
    return [e.to_wire() for e in manifests.load_entries(catalog.BUILTIN_CATALOG)]


def cluster_objects() -> list[dict[str, Any]]:
    """The built-in entries; Qwen3 4B served by three endpoints (weights 300/100/100, the third
    not Ready yet), a Whisper endpoint that cannot be scheduled, and two training jobs."""
    return [
        *builtin_entries(),
        endpoint("qwen-a", "qwen3-4b-instruct-2507", weight=300, replicas=2),
        endpoint("qwen-b", "qwen3-4b-instruct-2507", weight=100),
        endpoint("qwen-c", "qwen3-4b-instruct-2507", weight=100, phase="Progressing"),
        endpoint(
            "whisper",
            "whisper-tiny",
            namespace="speech",
            phase="Pending",
            reason="Unschedulable",
            message="0/3 nodes have enough nvidia.com/gpu",
        ),
        training_job("ft-tiny", "tinyllama-bnb-4bit", "Running", step=30, totalSteps=120, loss=1.2345),
        training_job("ft-done", "llama-3-2-1b-instruct", "Succeeded", step=50, totalSteps=50),
    ]


class Api:
    """A synchronous client of one served status API."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        response = self.session.get(self.base + path, params=params, timeout=10)
        return response.status_code, response.json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        response = self.session.post(self.base + path, json=body, timeout=10, **kwargs)
        return response.status_code, response.json()


@pytest.fixture()
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()


@pytest.fixture()
def view() -> statusapi.Cache:
    return statusapi.Cache(cluster_objects())


@pytest.fixture()
def serve(loop: Loop) -> Callable[..., Api]:
    """``serve(view, token=None, **settings) -> Api``."""

    def start(source: statusapi.Cache, token: str | None = None, **settings: Any) -> Api:
        config = statusapi.StatusApiSettings(token=token, **settings)
        return Api(loop.serve(statusapi.create_app(config, source)))

    return start


@pytest.fixture()
def api(view: statusapi.Cache, serve: Callable[..., Api]) -> Api:
    return serve(view)
