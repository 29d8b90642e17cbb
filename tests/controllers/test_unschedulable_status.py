"""An endpoint asking for more GPUs than any node has says so, with the scheduler's words;
fixed, it runs the real runtime with a tiny model, becomes Ready, and answers."""

from __future__ import annotations

import pathlib
from typing import Any

from opkit import apply, get, status_of

from kit import wait_for


def test_four_gpus_is_unschedulable_until_fixed_then_ready(
    local_cluster: Any, operator: Any, namespace: str, tiny_llama: pathlib.Path
) -> None:
    entry = f"gpu-{namespace}"
    apply(
        local_cluster,
        f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {entry}}}
spec:
  source: {{provider: local, uri: "file://{tiny_llama}"}}
  servedName: tiny-chat
  architecture: LlamaForCausalLM
  runtime: {{engine: transformers}}
  generationDefaults: {{maxTokens: 8}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: big, namespace: {namespace}}}
spec: {{model: {entry}, resources: {{gpus: 4, cpu: 100m, memory: 1Gi}}}}
""",
    )
    status = wait_for(
        lambda: (s := status_of(local_cluster, namespace, "big")).get("reason") == "Unschedulable" and s,
        30,
        "Unschedulable",
    )
    assert status["phase"] == "Pending"
    assert status["message"].startswith("Unschedulable: 0/")
    assert "Insufficient nvidia.com/gpu" in status["message"]
    local_cluster.kubectl(
        "patch",
        "modelendpoint",
        "big",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"spec":{"resources":{"gpus":1}}}',
    )
    ready = wait_for(
        lambda: (s := status_of(local_cluster, namespace, "big")).get("phase") == "Ready" and s, 120, "Ready"
    )
    assert ready["ready"] == "1/1" and ready["observedGeneration"] == 2
    events = local_cluster.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        "involvedObject.kind=ModelEndpoint,involvedObject.name=big",
    ).stdout
    assert "Unschedulable" in events and "-> Ready" in events
    assert {c["type"]: c["status"] for c in ready["conditions"]}["Available"] == "True"
    listed = wait_for(
        lambda: (
            (get(local_cluster, f"/apis/modelyard.io/v1alpha1/modelentries/{entry}") or {})
            .get("status", {})
            .get("endpoints")
            == [{"namespace": namespace, "name": "big", "ready": True}]
        ),
        15,
        "the entry to list the endpoint as ready",
    )
    assert listed
    # The pod answers the OpenAI API at its pod IP.
    import openai

    pods = local_cluster.kube.get(
        f"/api/v1/namespaces/{namespace}/pods", labelSelector="modelyard.io/endpoint=big"
    )
    running = [p for p in pods["items"] if p["status"].get("podIP") and p["status"].get("phase") == "Running"]
    client = openai.OpenAI(base_url=f"http://{running[0]['status']['podIP']}:8000/v1", api_key="unused")
    reply = client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert reply.choices[0].message.content is not None
    local_cluster.kubectl("delete", "modelentry", entry)
