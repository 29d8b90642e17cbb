"""An entry resolves from a config.json in a ConfigMap; an upstream endpoint runs no pods and is
Ready when its base URL answers."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from opkit import apply, get, status_of

from kit import models_server, wait_for

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "registry" / "fixtures" / "configs"


@pytest.fixture
def upstream() -> Iterator[str]:
    with models_server() as url:
        yield url


def test_entry_resolves_from_a_configmap(local_cluster: Any, operator: Any) -> None:
    config = (CONFIGS / "Qwen__Qwen3-4B.json").read_text()
    local_cluster.kubectl(
        "create",
        "configmap",
        "qwen3-config",
        "-n",
        "modelyard-system",
        f"--from-literal=config.json={config}",
    )
    name = "qwen3-from-configmap"
    manifest = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {name}}}
spec:
  source: {{repo: Qwen/Qwen3-4B}}
  config: {{configMapRef: {{name: qwen3-config, key: config.json}}}}
"""
    assert apply(local_cluster, manifest).returncode == 0
    path = f"/apis/modelyard.io/v1alpha1/modelentries/{name}"
    status = wait_for(
        lambda: (
            (get(local_cluster, path) or {}).get("status", {}).get("phase")
            and get(local_cluster, path)["status"]
        ),
        15,
        "status",
    )  # type: ignore[index]
    assert (status["phase"], status["architecture"], status["family"], status["category"]) == (
        "Valid",
        "Qwen3ForCausalLM",
        "qwen",
        "text-llm",
    )
    assert status["estimate"]["parameters"] == 4022468096
    assert status["requirements"]["minVramGb"] >= 8
    local_cluster.kubectl("delete", "configmap", "qwen3-config", "-n", "modelyard-system")
    local_cluster.kubectl("delete", "modelentry", name)


def test_missing_configmap_makes_the_entry_invalid_with_a_reason(local_cluster: Any, operator: Any) -> None:
    name = "no-config"
    manifest = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {name}}}
spec: {{source: {{repo: a/b}}, config: {{configMapRef: {{name: nope, key: config.json}}}}}}
"""
    apply(local_cluster, manifest)
    path = f"/apis/modelyard.io/v1alpha1/modelentries/{name}"
    status = wait_for(
        lambda: (get(local_cluster, path) or {}).get("status", {}).get("reason"), 15, "a reason"
    )
    assert status == "ConfigMap modelyard-system/nope (spec.config.configMapRef) does not exist"
    local_cluster.kubectl("delete", "modelentry", name)


def test_upstream_endpoint_is_ready_when_its_base_url_answers(
    local_cluster: Any, operator: Any, namespace: str, upstream: str
) -> None:
    name = f"proxy-{namespace}"
    manifest = f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {name}}}
spec:
  source: {{provider: upstream}}
  servedName: gpt-proxy
  category: text-llm
  runtime: {{engine: upstream}}
  upstream: {{baseUrl: "{upstream}", model: gpt-4o}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: proxy, namespace: {namespace}}}
spec: {{model: {name}}}
"""
    assert apply(local_cluster, manifest).returncode == 0
    status = wait_for(
        lambda: (s := status_of(local_cluster, namespace, "proxy")).get("phase") == "Ready" and s, 20, "Ready"
    )
    assert (status["engine"], status["url"], status["servedName"]) == ("upstream", upstream, "gpt-proxy")
    assert get(local_cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments/proxy") is None
    local_cluster.kubectl("delete", "modelentry", name)
