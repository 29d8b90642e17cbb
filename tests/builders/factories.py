"""Small factories for the resources the builder tests start from."""

from __future__ import annotations

from typing import Any

from modelyard import api


def entry(name: str = "llama", **spec: Any) -> api.ModelEntry:
    body = {"source": {"repo": "meta-llama/Llama-3.2-1B-Instruct"}, **spec}
    return api.ModelEntry.model_validate({"metadata": {"name": name, "uid": "e-uid"}, "spec": body})


def endpoint(name: str = "chat", namespace: str = "ml", **spec: Any) -> api.ModelEndpoint:
    body = {"model": "llama", **spec}
    return api.ModelEndpoint.model_validate(
        {"metadata": {"name": name, "namespace": namespace, "uid": "ep-uid"}, "spec": body}
    )
