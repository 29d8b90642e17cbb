"""Helpers for the served-name ownership tests: manifests, a webhook bypass as an admin would do
it, a gateway (with fake model servers) against the local control plane, and its request counts.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai

import kit

ROOT = Path(__file__).resolve().parents[2]
GROUP = "/apis/modelyard.io/v1alpha1"

_gateway = kit.load("gateway/conftest.py", "modelyard_security_gateway_fixtures")

harness = _gateway.harness  # the gateway tests' fixture, for the modules that import it


def upstream_entry(name: str, served: str, base_url: str, serving: list[str] | None = None) -> dict[str, Any]:
    """A cluster-scoped ModelEntry that proxies to an OpenAI-compatible server (no pods needed)."""
    spec: dict[str, Any] = {
        "source": {"provider": "upstream"},
        "servedName": served,
        "category": "text-llm",
        "runtime": {"engine": "upstream"},
        "upstream": {"baseUrl": base_url},
    }
    if serving is not None:
        spec["servingNamespaces"] = serving
    meta = {"name": name}
    return {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEntry", "metadata": meta, "spec": spec}


def endpoint(name: str, namespace: str, model: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": model, **spec},
    }


def admin_apply(cluster: Any, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


@contextlib.contextmanager
def webhook_bypassed(cluster: Any, configuration: str = "modelyard.io") -> Iterator[None]:
    """What an admin restoring from a backup does: the validating webhook configuration is
    deleted for a moment (kubectl apply then reaches etcd with no admission check of ours), and
    put back as it was."""
    found = cluster.kubectl("get", "validatingwebhookconfiguration", configuration, "-o", "json")
    saved = json.loads(found.stdout)
    for field in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        saved["metadata"].pop(field, None)
    cluster.kubectl("delete", "validatingwebhookconfiguration", configuration)
    try:
        yield
    finally:
        cluster.kubectl("create", "-f", "-", input=json.dumps(saved))


def chat(url: str, model: str, key: str = "unused") -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=20)
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    return reply.choices[0].message.content or ""


def metrics_text(url: str, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(f"{url}/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def requests_to(metrics: str, endpoint_key: str) -> int:
    """``modelyard_gateway_requests_total`` summed over every series of one endpoint."""
    total = 0.0
    pattern = re.compile(r"^modelyard_gateway_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)
    for labels, value in pattern.findall(metrics):
        if f'endpoint="{endpoint_key}"' in labels:
            total += float(value)
    return int(total)
