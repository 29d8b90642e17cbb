"""Helpers the operator tests share: apply manifests, read objects and their status, wait."""

from __future__ import annotations

import subprocess
from typing import Any

from kit import wait_for

GROUP_PATH = "/apis/modelyard.io/v1alpha1"


def apply(cluster: Any, manifest: str) -> subprocess.CompletedProcess[str]:
    """kubectl apply; returns the result (stderr carries admission warnings and denials)."""
    return cluster.kubectl("apply", "-f", "-", input=manifest, check=False)


def get(cluster: Any, path: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = cluster.kube.get(path)
    return found


def endpoint(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return get(cluster, f"{GROUP_PATH}/namespaces/{namespace}/modelendpoints/{name}") or {}


def status_of(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = endpoint(cluster, namespace, name).get("status") or {}
    return status


def entry_and_endpoint(
    namespace: str,
    entry: str,
    *,
    served: str | None = None,
    uri: str = "file:///nonexistent/model",
    endpoint_spec: str = "replicas: 1, resources: {gpus: 0}",
) -> str:
    """A ModelEntry (served as ``served``, else its own name) and a ModelEndpoint ``chat`` of it in
    ``namespace``; ``endpoint_spec`` is the rest of the endpoint's flow-style spec."""
    return f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {entry}}}
spec:
  source: {{provider: local, uri: "{uri}"}}
  architecture: LlamaForCausalLM
  servedName: {served or entry}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: chat, namespace: {namespace}}}
spec: {{model: {entry}, {endpoint_spec}}}
"""


def conflict_of(cluster: Any, namespace: str, name: str = "chat") -> dict[str, Any]:
    """The endpoint's status once it reports ``OwnershipConflict`` (waits up to 15 s)."""
    return dict(
        wait_for(
            lambda: (s := status_of(cluster, namespace, name)).get("reason") == "OwnershipConflict" and s,
            15,
            "the endpoint to report the conflict",
        )
    )
