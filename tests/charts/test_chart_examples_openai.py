"""Acceptance: install the chart into a local control plane, apply docs/examples (through a test
overlay that serves `qwen2-5-0-5b-instruct` from a tiny Llama built here and points the upstream
entry at a fake OpenAI server), and get answers through the gateway Service with the `openai`
client.

The overlay changes only what cannot run on this machine: the model source (no hub), GPU counts
of the chat endpoints (one real node; the runtime runs on CPU), the upstream base URL, and the
TrainingJob's GPU type, which sends its pod to a fake node (the agent marks it Running, no
trainer burns the two CPUs). Everything else is docs/examples as committed.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chartkit
import pytest

import kit

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# The gateway is still starting or a route not synced yet: an exception means "not yet".
_wait = functools.partial(kit.wait_for, interval=1.0, ignoring=(Exception,))

EXAMPLES = chartkit.ROOT / "docs" / "examples"
REAL_NODE = "chart-gpu-1"
UPSTREAM_KEY = "sk-upstream-from-secret"
GATEWAY_KEY = "sk-acceptance"


class _FakeOpenAI(http.server.BaseHTTPRequestHandler):
    """Answers /v1/chat/completions with what it was sent (model and Authorization)."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        text = f"upstream got model={body.get('model')} auth={self.headers.get('Authorization')}"
        answer = json.dumps({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[str]:
    with kit.http_server(_FakeOpenAI) as url:
        yield url + "/v1"


@pytest.fixture(scope="module")
def tiny_model() -> Iterator[Path]:
    """Outside /tmp: the node agent maps a pod's /tmp elsewhere."""
    from modelyard.local import tinymodels

    root = Path.home() / ".cache" / "modelyard" / "test-models" / f"chart-{uuid.uuid4().hex[:8]}"
    yield tinymodels.build_llama(root / "llama")
    shutil.rmtree(root, ignore_errors=True)


def _overlay(directory: Path, model: Path, upstream: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    base = os.path.relpath(EXAMPLES, directory)  # kustomize wants a relative base
    entry_spec = {
        "source": {"provider": "local", "uri": f"file://{model}"},
        "servedName": "qwen2.5-0.5b-instruct",
        "category": "text-llm",
        "architecture": "LlamaForCausalLM",
        "capabilities": {"inference": True, "training": True, "streaming": True},
        "runtime": {"engine": "transformers"},
        "generationDefaults": {"maxTokens": 8},
    }

    def patch(kind: str, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        return {"target": {"group": "modelyard.io", "kind": kind, "name": name}, "patch": json.dumps(ops)}

    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [base],
        "patches": [
            patch("ModelEntry", "qwen2-5-0-5b-instruct",
                  [{"op": "replace", "path": "/spec", "value": entry_spec}]),
            patch("ModelEntry", "openai-gpt-4o-mini",
                  [{"op": "replace", "path": "/spec/upstream/baseUrl", "value": upstream}]),
            patch("ModelEndpoint", "chat-.*", [
                {"op": "replace", "path": "/spec/replicas", "value": 1},
                {"op": "replace", "path": "/spec/resources",
                 "value": {"gpus": 0, "cpu": "100m", "memory": "1Gi"}},
                {"op": "replace", "path": "/spec/engineArgs", "value": {"maxModelLen": 256}},
                {"op": "add", "path": "/spec/nodeSelector", "value": {"kubernetes.io/hostname": REAL_NODE}},
            ]),
            patch("TrainingJob", "support-bot", [
                {"op": "replace", "path": "/spec/resources",
                 "value": {"gpus": 1, "gpuType": "Tesla-T4", "cpu": "100m", "memory": "1Gi"}},
            ]),
        ],
    }  # fmt: skip
    (directory / "kustomization.yaml").write_text(json.dumps(kustomization, indent=2))
    return directory


def test_examples_answer_through_the_gateway_service(
    own_cluster: Any, tmp_path: Path, tiny_model: Path, fake_upstream: str
) -> None:
    nodes = [f"{REAL_NODE}:1:NVIDIA-L4"]
    with own_cluster(tmp_path / "cluster", nodes, fake_nodes=["chart-train:1:Tesla-T4"]) as c:
        # The chart's own pods go to the real node: on the fake one nothing would run them.
        pin = "kubernetes\\.io/hostname=" + REAL_NODE
        c.kubectl("create", "namespace", "ml")  # the upstream key's grant is a Role there
        result = chartkit.helm(
            "install", chartkit.RELEASE, str(chartkit.CHART), "-n", chartkit.NAMESPACE, "--create-namespace",
            "--set-string", f"operator.nodeSelector.{pin}", "--set-string", f"gateway.nodeSelector.{pin}",
            "--set", f"gateway.auth.keys.acceptance={GATEWAY_KEY}", "--wait", "--timeout", "300s",
            "--set-json", 'gateway.upstreamKeySecrets=[{"namespace": "ml", "name": "openai-api-key"}]',
            home=tmp_path / "helm", kubeconfig=c.kubeconfig, timeout=420,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

        overlay = _overlay(tmp_path / "overlay", tiny_model, fake_upstream)
        applied = _wait(lambda: c.kubectl("apply", "-k", str(overlay), check=False).returncode == 0,
                        120, "kubectl apply -k of the examples overlay")  # fmt: skip
        assert applied
        c.kubectl("-n", "ml", "create", "secret", "generic", "openai-api-key",
                  f"--from-literal=api-key={UPSTREAM_KEY}")  # fmt: skip

        def ready(name: str) -> bool:
            found = c.kube.get(f"/apis/modelyard.io/v1alpha1/namespaces/ml/modelendpoints/{name}")
            return bool(found) and (found.get("status") or {}).get("phase") == "Ready"

        for name in ("chat-stable", "chat-canary", "openai-gpt-4o-mini"):
            _wait(lambda name=name: ready(name), 400, f"ModelEndpoint ml/{name} Ready")

        address, port = chartkit.ready_address(c.kube, chartkit.NAMESPACE, "modelyard-gateway")

        import openai

        client = openai.OpenAI(base_url=f"http://{address}:{port}/v1", api_key=GATEWAY_KEY, max_retries=0)
        _wait(lambda: {"chat", "openai-gpt-4o-mini"} <= {m.id for m in client.models.list().data},
              120, "the gateway to route chat and openai-gpt-4o-mini")  # fmt: skip

        chat = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Say hello"}], max_tokens=8
        )
        assert chat.choices[0].message.role == "assistant"
        assert isinstance(chat.choices[0].message.content, str) and chat.choices[0].message.content
        assert chat.usage is not None and chat.usage.completion_tokens > 0
        # ... through the NetworkPolicy the operator made: it selects the pod that answered and
        # admits only the release's gateway and operator.
        policy = c.kube.get("/apis/networking.k8s.io/v1/namespaces/ml/networkpolicies/chat-stable")
        assert policy["spec"]["podSelector"] == {"matchLabels": {"modelyard.io/endpoint": "chat-stable"}}
        peer = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        gateway_pod = c.kube.get(f"/api/v1/namespaces/{chartkit.NAMESPACE}/pods?labelSelector="
                                 "app.kubernetes.io/component%3Dgateway")["items"][0]
        assert peer.items() <= gateway_pod["metadata"]["labels"].items()

        upstream = client.chat.completions.create(
            model="openai-gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
        )
        assert upstream.choices[0].message.content == (
            f"upstream got model=gpt-4o-mini auth=Bearer {UPSTREAM_KEY}"
        )

        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=client.base_url, api_key="wrong", max_retries=0).models.list()

        # The rest of the examples reached the operator too.
        job = c.kube.get("/apis/modelyard.io/v1alpha1/namespaces/ml/trainingjobs/support-bot")
        assert job is not None
        _wait(lambda: (c.kube.get("/apis/modelyard.io/v1alpha1/namespaces/ml/trainingjobs/support-bot")
                       .get("status") or {}).get("phase"), 120, "the TrainingJob's phase")  # fmt: skip
        entries = c.kube.get("/apis/modelyard.io/v1alpha1/modelentries")["items"]
        assert {"qwen2-5-0-5b-instruct", "openai-gpt-4o-mini"} <= {e["metadata"]["name"] for e in entries}
