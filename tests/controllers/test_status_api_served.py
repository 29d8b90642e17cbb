"""The operator serves the status API from its own view of the cluster, kept fresh by its watches."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from opkit import apply

from kit import wait_for


def _get(operator: Any, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_entries_and_endpoints_show_up_as_they_change(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    name = f"api-{namespace}"
    apply(
        local_cluster,
        f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {name}}}
spec: {{source: {{repo: org/{name}}}, architecture: Qwen3ForCausalLM, tags: [served-by-test]}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: ep, namespace: {namespace}}}
spec: {{model: {name}, replicas: 0, weight: 70}}
""",
    )
    found = wait_for(
        lambda: _get(operator, "/api/v1/registry/models?tag=served-by-test")[1].get("total") == 1,
        60,
        "the entry",
    )
    assert found
    status, body = _get(operator, f"/api/v1/registry/models/org/{name}")
    assert status == 200 and body["success"] is True
    status, body = _get(operator, "/api/v1/registry/models/no/such-model")
    assert status == 404 and body["success"] is False
    endpoints = wait_for(
        lambda: [
            e for e in _get(operator, "/api/v1/endpoints")[1]["data"] if e.get("namespace") == namespace
        ],
        10,
        "the endpoint",
    )
    assert endpoints[0]["name"] == "ep"
    local_cluster.kubectl("delete", "modelendpoint", "ep", "-n", namespace)
    wait_for(
        lambda: (
            not [e for e in _get(operator, "/api/v1/endpoints")[1]["data"] if e.get("namespace") == namespace]
        ),
        10,
        "the endpoint to disappear",
    )
    local_cluster.kubectl("delete", "modelentry", name)
