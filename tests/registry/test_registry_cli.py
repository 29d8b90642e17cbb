"""``modelyard registry validate`` and ``estimate`` as a user runs them."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True)


def test_estimate_llama_3_2_1b_reports_1_24b_parameters() -> None:
    result = _run("registry", "estimate", str(FIXTURES / "configs" / "meta-llama__Llama-3.2-1B.json"))
    assert result.returncode == 0, result.stderr
    assert "1.24B (1,235,814,400)" in result.stdout


def test_estimate_json_with_a_gpu_that_is_too_small_exits_3() -> None:
    result = _run(
        "registry", "estimate", str(FIXTURES / "configs" / "meta-llama__Llama-3.1-8B.json"),
        "--gpu-memory", "16", "--max-model-len", "4096", "--json",
    )  # fmt: skip
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["fit"]["fits"] is False and data["kv_cache_bytes_per_token"] == 131072
    text = _run(
        "registry", "estimate", str(FIXTURES / "configs" / "meta-llama__Llama-3.1-8B.json"),
        "--gpu-memory", "16", "--max-model-len", "4096",
    )  # fmt: skip
    assert text.returncode == 3 and "does not fit" in text.stdout


def test_estimate_of_an_unknown_architecture_lists_the_supported(tmp_path: pathlib.Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["FooForCausalLM"]}))
    result = _run("registry", "estimate", str(tmp_path / "config.json"))
    assert result.returncode == 1
    assert "unsupported architecture 'FooForCausalLM'; supported:" in result.stderr


def test_validate_accepts_good_files_of_every_format() -> None:
    result = _run(
        "registry", "validate",
        str(FIXTURES / "catalogs" / "models.yaml"), str(FIXTURES / "catalogs" / "models_registry.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "models.yaml: ok (5 objects)" in result.stdout


def test_validate_names_every_bad_field(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """\
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {name: chat, namespace: default}
spec: {model: llama, weight: 5000, replicas: -1}
---
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {name: foo}
spec:
  source: {repo: org/foo}
  architecture: FooForCausalLM
---
apiVersion: modelyard.io/v1alpha1
kind: TrainingJob
metadata: {name: tune}
spec: {model: llama, dataset: {}, output: {uri: "pvc://out/x"}}
"""
    )
    result = _run("registry", "validate", str(bad))
    assert result.returncode == 1
    err = result.stderr
    assert "ModelEndpoint/chat (document 1): spec.weight: Input should be less than or equal to 1000" in err
    assert "ModelEndpoint/chat (document 1): spec.replicas: Input should be greater than or equal to 0" in err
    assert "ModelEntry/foo (document 2): unsupported architecture 'FooForCausalLM'" in err
    assert "TrainingJob/tune (document 3): spec.dataset: dataset needs exactly one of uri or configMap" in err
