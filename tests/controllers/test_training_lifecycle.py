"""TrainingJobs run the real trainer on a tiny Llama: live progress with a falling loss, a
registered adapter entry an endpoint serves through the gateway; a bad dataset line fails the job with its
number; a trainer killed mid-run comes back in a new pod and resumes from its checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opkit import apply, get, status_of

from kit import wait_for

FACTS = [
    ("What colour is the sky?", "The sky is blue."),
    ("What do cows drink?", "Cows drink water."),
    ("What is two plus two?", "Two plus two is four."),
    ("Where do fish live?", "Fish live in water."),
]
JOBS = "/apis/modelyard.io/v1alpha1/namespaces/{ns}/trainingjobs/{name}"


@pytest.fixture
def output_root() -> Iterator[pathlib.Path]:
    """Trainer output outside /tmp (a pod's /tmp is an emptyDir the node agent maps elsewhere)."""
    root = pathlib.Path.home() / ".cache" / "modelyard" / "test-output" / uuid.uuid4().hex[:8]
    root.mkdir(parents=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _dataset(cluster: Any, namespace: str, lines: list[str]) -> None:
    cluster.kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "data"},
         "data": {"train.jsonl": "\n".join(lines) + "\n"}},
    )  # fmt: skip


def _chat_lines() -> list[str]:
    return [
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
        for q, a in FACTS
    ]


def _apply_job(
    cluster: Any,
    namespace: str,
    entry: str,
    model: pathlib.Path,
    out: pathlib.Path,
    steps: int,
    extra: str = "",
) -> None:
    result = apply(
        cluster,
        f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {entry}}}
spec:
  source: {{provider: local, uri: "file://{model}"}}
  servedName: {entry}
  architecture: LlamaForCausalLM
  runtime: {{engine: transformers}}
  generationDefaults: {{maxTokens: 8}}
  trainingDefaults:
    hyperparameters: {{learningRate: 0.02, batchSize: 4, gradientAccumulationSteps: 1, warmupSteps: 0}}
    lora: {{r: 8, loraAlpha: 16, targetModules: [q_proj, v_proj, up_proj, down_proj]}}
---
apiVersion: modelyard.io/v1alpha1
kind: TrainingJob
metadata: {{name: tune, namespace: {namespace}}}
spec:
  model: {entry}
  method: lora
  dataset: {{configMap: {{name: data, key: train.jsonl}}}}
  hyperparameters: {{maxSteps: {steps}}}
  resources: {{gpus: 0, cpu: 100m, memory: 1Gi}}
  backoffLimit: 2
  output:
    uri: "file://{out}"
{extra}
""",
    )
    assert result.returncode == 0, result.stderr


def _job_status(cluster: Any, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = (get(cluster, JOBS.format(ns=namespace, name="tune")) or {}).get("status") or {}
    return found


def _finished(cluster: Any, namespace: str, timeout: float, seen: list[dict[str, Any]]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = _job_status(cluster, namespace)
        if status.get("progress") and status["progress"] not in seen:
            seen.append(status["progress"])
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    result: dict[str, Any] = wait_for(done, timeout, "the TrainingJob to finish", interval=0.5)
    return result


STEPS = 300


def test_a_lora_job_reports_falling_loss_registers_and_is_served(
    local_cluster: Any, operator: Any, namespace: str, tiny_llama: pathlib.Path, output_root: pathlib.Path
) -> None:
    entry, out = f"base-{namespace}", output_root / "adapter"
    _dataset(local_cluster, namespace, _chat_lines())
    register = f"    register: {{name: tuned-{namespace}, servedName: tuned-{namespace}}}"
    # long enough (a few seconds on a quiet machine) for the operator's 2 s poll to see it running
    _apply_job(local_cluster, namespace, entry, tiny_llama, out, STEPS, register)
    seen: list[dict[str, Any]] = []
    status = _finished(local_cluster, namespace, 300, seen)
    assert status["phase"] == "Succeeded", status
    manifest = json.loads((out / "manifest.json").read_text())
    progress = status["progress"]
    assert progress["step"] == progress["totalSteps"] == STEPS and progress["percent"] == 100
    assert progress["loss"] < manifest["firstLoss"], (manifest["firstLoss"], progress)
    assert any(p.get("step", 0) < STEPS for p in seen), f"no live progress seen: {seen}"
    assert status["effective"]["hyperparameters"]["maxSteps"] == STEPS
    registered_name = f"{namespace}.tuned-{namespace}"  # the default registration mode prefixes it
    assert status["registeredModel"] == registered_name
    registered = get(local_cluster, f"/apis/modelyard.io/v1alpha1/modelentries/{registered_name}") or {}
    assert registered["spec"]["adapter"] == {"baseModel": entry, "uri": f"file://{out}"}
    assert registered["spec"]["lifecycle"] == "experimental"
    assert registered["metadata"]["labels"]["modelyard.io/trained-by"] == f"{namespace}.tune"
    # An endpoint of the registered entry serves base + adapter under the served name, through
    # the gateway.
    served = f"tuned-{namespace}"
    applied = apply(
        local_cluster,
        f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: tuned, namespace: {namespace}}}
spec: {{model: {registered_name}, resources: {{gpus: 0, cpu: 100m, memory: 1Gi}}}}
""",
    )
    assert applied.returncode == 0, applied.stderr
    wait_for(lambda: status_of(local_cluster, namespace, "tuned").get("phase") == "Ready", 120, "Ready")
    with _gateway(local_cluster.kubeconfig, output_root / "gateway.log") as base_url:
        import openai

        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
        wait_for(lambda: served in {m.id for m in client.models.list().data}, 30, "the gateway to route it")
        reply = client.chat.completions.create(
            model=served, messages=[{"role": "user", "content": FACTS[0][0]}], max_tokens=6
        )
    assert reply.model == served and reply.choices[0].message.content is not None
    local_cluster.kubectl("delete", "modelendpoint", "tuned", "-n", namespace)
    local_cluster.kubectl("delete", "modelentry", entry, registered_name)


@contextlib.contextmanager
def _gateway(kubeconfig: pathlib.Path, log: pathlib.Path) -> Iterator[str]:
    """``modelyard gateway`` against the session cluster, without API keys; yields its /v1 URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "modelyard", "gateway", "--kubeconfig", str(kubeconfig),
        "--host", "127.0.0.1", "--port", str(port), "--no-auth",
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/v1/models"), 30, "the gateway to listen")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=15)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (OSError, urllib.error.URLError):
        return False


def test_a_bad_dataset_line_fails_the_job_with_its_number(
    local_cluster: Any, operator: Any, namespace: str, tiny_llama: pathlib.Path, output_root: pathlib.Path
) -> None:
    entry = f"bad-{namespace}"
    lines = [*_chat_lines()[:2], '{"messages": [{"role": "user"}]}', *_chat_lines()[2:]]
    _dataset(local_cluster, namespace, lines)
    _apply_job(local_cluster, namespace, entry, tiny_llama, output_root / "out", 5)
    status = _finished(local_cluster, namespace, 90, [])
    assert status["phase"] == "Failed"
    assert "dataset line 3: messages[0].content must be a string" in status["message"], status["message"]
    pods = local_cluster.kube.get(
        f"/api/v1/namespaces/{namespace}/pods", labelSelector="modelyard.io/training-job=tune"
    )["items"]
    assert len(pods) == 1, "a bad dataset is not retried"
    local_cluster.kubectl("delete", "modelentry", entry)


def test_a_killed_trainer_resumes_from_its_checkpoint(
    local_cluster: Any, operator: Any, namespace: str, tiny_llama: pathlib.Path, output_root: pathlib.Path
) -> None:
    # Enough steps (a checkpoint every steps/8) that an idle machine (~50 steps/s) cannot finish
    # the run between the first checkpoint and the kill.
    steps = 400
    entry, out = f"resume-{namespace}", output_root / "out"
    _dataset(local_cluster, namespace, _chat_lines())
    _apply_job(local_cluster, namespace, entry, tiny_llama, out, steps)
    checkpoints = out / "checkpoints"
    wait_for(lambda: checkpoints.is_dir() and any(checkpoints.iterdir()), 90, "a first checkpoint")
    time.sleep(0.5)  # let the checkpoint finish writing
    pods = local_cluster.kube.get(
        f"/api/v1/namespaces/{namespace}/pods", labelSelector="modelyard.io/training-job=tune"
    )["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    assert len(running) == 1
    pid = int(running[0]["status"]["containerStatuses"][0]["containerID"].removeprefix("modelyard://"))
    assert not (out / "manifest.json").exists(), "the run finished before it could be killed"
    os.killpg(pid, signal.SIGKILL)
    status = _finished(local_cluster, namespace, 240, [])
    assert status["phase"] == "Succeeded", status
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumedFromStep"] > 0 and manifest["steps"] == steps, manifest
    assert status["progress"]["step"] == steps
    pods = local_cluster.kube.get(
        f"/api/v1/namespaces/{namespace}/pods", labelSelector="modelyard.io/training-job=tune"
    )["items"]
    assert len(pods) == 2  # the killed pod and the one that resumed
    local_cluster.kubectl("delete", "modelentry", entry)
