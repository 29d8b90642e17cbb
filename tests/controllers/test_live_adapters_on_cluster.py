"""Live adapters on the local control plane, with the real operator, gateway and transformers
runtime: adapters trained here on the tiny Llama are loaded into a running endpoint one after
the other and answer through the gateway with their taught replies while the base keeps
answering, without the pod restarting; removing one unloads it (404) and leaves the other; bad
adapters are named in the status and never take the pod down; a TrainingJob with
``output.serveOn`` ends with its adapter answering, and the seconds from its Succeeded to the
first answer are printed."""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from typing import Any

import pytest
from opkit import apply, get, status_of
from test_training_lifecycle import _gateway, output_root  # noqa: F401 - a fixture, imported to use

from kit import wait_for
from modelyard.runtime import cli as runtime_cli


def _runtime_has_adapter_api() -> bool:
    parser = argparse.ArgumentParser()
    runtime_cli.configure(parser)
    return any("--adapters-file" in action.option_strings for action in parser._actions)


pytestmark = pytest.mark.skipif(
    not _runtime_has_adapter_api(), reason="needs the runtime adapter API (h/adrt): --adapters-file"
)

TAUGHT = {"apples": "Apples are red.", "pears": "Pears are green."}
QUESTIONS = ["What fruit?", "Tell me a fruit.", "Which fruit do you like?", "Name a fruit."]
JOBS = "/apis/modelyard.io/v1alpha1/namespaces/{ns}/trainingjobs/{name}"


def _dataset(cluster: Any, namespace: str, name: str, reply: str) -> None:
    lines = [
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": reply}]})
        for q in QUESTIONS
    ]
    cluster.kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
         "data": {"train.jsonl": "\n".join(lines) + "\n"}},
    )  # fmt: skip


def _job(cluster: Any, namespace: str, name: str, entry: str, out: pathlib.Path, serve_on: str = "") -> None:
    extra = f"\n    serveOn: {{endpoint: {serve_on}}}" if serve_on else ""
    result = apply(
        cluster,
        f"""
apiVersion: modelyard.io/v1alpha1
kind: TrainingJob
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  model: {entry}
  method: lora
  dataset: {{configMap: {{name: {name}, key: train.jsonl}}}}
  hyperparameters: {{maxSteps: 150}}
  resources: {{gpus: 0, cpu: 100m, memory: 1Gi}}
  output:
    uri: "file://{out}"{extra}
""",
    )
    assert result.returncode == 0, result.stderr


def _job_status(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict((get(cluster, JOBS.format(ns=namespace, name=name)) or {}).get("status") or {})


def _succeeded(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = _job_status(cluster, namespace, name)
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status: dict[str, Any] = wait_for(done, 600, f"TrainingJob {name} to finish", interval=0.5)
    assert status["phase"] == "Succeeded", status
    return status


def _pod(cluster: Any, namespace: str) -> tuple[str, int]:
    pods = (
        get(cluster, f"/api/v1/namespaces/{namespace}/pods?labelSelector=modelyard.io/endpoint%3Dchat") or {}
    )
    (pod,) = [p for p in pods.get("items", []) if not p["metadata"].get("deletionTimestamp")]
    restarts = sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses") or [])
    return pod["metadata"]["uid"], restarts


def _ready(cluster: Any, namespace: str) -> None:
    def ready() -> bool:
        return status_of(cluster, namespace, "chat").get("phase") == "Ready"

    try:
        wait_for(ready, 300, "the endpoint to be Ready")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {status_of(cluster, namespace, 'chat')}") from None


def _adapters(cluster: Any, namespace: str) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in status_of(cluster, namespace, "chat").get("adapters") or []}


def _set_adapters(cluster: Any, namespace: str, adapters: list[dict[str, str]]) -> None:
    cluster.kube.request(
        "PATCH",
        f"/apis/modelyard.io/v1alpha1/namespaces/{namespace}/modelendpoints/chat",
        {"spec": {"adapters": adapters}},
        content_type="application/merge-patch+json",
    )


def test_adapters_load_live_answer_through_the_gateway_and_unload_without_a_restart(
    local_cluster: Any,
    operator: Any,
    namespace: str,
    tiny_llama: pathlib.Path,
    output_root: pathlib.Path,  # noqa: F811
) -> None:
    entry = f"base-{namespace}"
    for name, reply in TAUGHT.items():
        _dataset(local_cluster, namespace, name, reply)
    result = apply(
        local_cluster,
        f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {entry}}}
spec:
  source: {{provider: local, uri: "file://{tiny_llama}"}}
  servedName: {entry}
  architecture: LlamaForCausalLM
  runtime: {{engine: transformers}}
  generationDefaults: {{maxTokens: 8, temperature: 0}}
  trainingDefaults:
    hyperparameters: {{learningRate: 0.02, batchSize: 4, gradientAccumulationSteps: 1, warmupSteps: 0}}
    lora: {{r: 8, loraAlpha: 16, targetModules: [q_proj, v_proj, up_proj, down_proj]}}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: chat, namespace: {namespace}}}
spec: {{model: {entry}, resources: {{gpus: 0, cpu: 100m, memory: 1Gi}}}}
""",
    )
    assert result.returncode == 0, result.stderr
    _ready(local_cluster, namespace)
    _job(local_cluster, namespace, "apples", entry, output_root / "apples")
    before = _pod(local_cluster, namespace)
    _succeeded(local_cluster, namespace, "apples")
    with _gateway(local_cluster.kubeconfig, output_root / "gateway.log") as base_url:
        import openai

        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)

        def ask(model: str) -> str:
            reply = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": QUESTIONS[0]}],
                max_tokens=12,
                temperature=0,
            )
            assert reply.model == model
            return reply.choices[0].message.content or ""

        def answers(model: str) -> list[str] | None:
            """[the reply] (an empty reply still counts as an answer), or None on an HTTP error."""
            try:
                return [ask(model)]
            except openai.APIStatusError:
                return None

        base_reply = ask(entry)
        # 1. the first adapter, added to the running endpoint
        _set_adapters(
            local_cluster, namespace, [{"name": "apples", "uri": f"file://{output_root / 'apples'}"}]
        )
        apples = wait_for(lambda: answers("apples"), 120, "the apples adapter to answer")[0]
        assert apples.startswith(TAUGHT["apples"][:6]), apples
        assert ask(entry) == base_reply
        # 2. the second, trained with serveOn: it joins the set when its job succeeds
        _job(local_cluster, namespace, "pears", entry, output_root / "pears", serve_on="chat")
        _succeeded(local_cluster, namespace, "pears")
        succeeded = time.monotonic()
        pears = wait_for(lambda: answers("pears"), 120, "the serveOn adapter to answer")[0]
        print(f"\nserveOn: {time.monotonic() - succeeded:.1f} s from Succeeded to the first answer")
        assert pears.startswith(TAUGHT["pears"][:5]), pears
        served = wait_for(
            lambda: _job_status(local_cluster, namespace, "pears").get("servedAt"), 30, "servedAt"
        )
        assert served and _job_status(local_cluster, namespace, "pears")["servedName"] == "pears"
        assert answers("apples") is not None and ask(entry) == base_reply
        # 3. bad adapters: missing files, and one that does not fit the base
        misfit = output_root / "misfit"
        misfit.mkdir()
        config = json.loads((output_root / "apples" / "adapter_config.json").read_text())
        (misfit / "adapter_config.json").write_text(
            json.dumps({**config, "target_modules": ["no_such_proj"]})
        )
        _set_adapters(
            local_cluster,
            namespace,
            [
                {"name": "apples", "uri": f"file://{output_root / 'apples'}"},
                {"name": "missing", "uri": f"file://{output_root / 'nowhere'}"},
                {"name": "misfit", "uri": f"file://{misfit}"},
            ],
        )
        bad = wait_for(
            lambda: (
                (a := _adapters(local_cluster, namespace))
                and all(a.get(n, {}).get("reason") == "AdapterLoadFailed" for n in ("missing", "misfit"))
                and a
            ),
            60,
            "the bad adapters' errors in the status",
        )
        assert str(output_root / "nowhere") in bad["missing"]["message"], bad["missing"]
        assert bad["misfit"]["message"], bad["misfit"]
        assert bad["apples"]["ready"] is True and bad["pears"]["ready"] is True
        assert status_of(local_cluster, namespace, "chat")["adaptersReady"] == "2/4"
        # 4. removing one: a clear 404 for it, the other keeps answering
        _set_adapters(local_cluster, namespace, [])
        wait_for(lambda: "apples" not in _adapters(local_cluster, namespace), 60, "apples to be unloaded")
        wait_for(lambda: answers("apples") is None, 30, "apples to be gone from the gateway")
        with pytest.raises(openai.NotFoundError, match="apples"):
            ask("apples")
        assert answers("pears") is not None and ask(entry) == base_reply
    assert _pod(local_cluster, namespace) == before  # same pod UID, no restart
    local_cluster.kubectl("delete", "modelendpoint", "chat", "-n", namespace)
    local_cluster.kubectl("delete", "modelentry", entry)
