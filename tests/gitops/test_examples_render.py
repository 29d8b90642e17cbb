"""docs/examples is a kustomize base whose every object is valid modelyard input: it renders, each
custom resource validates against the API models and the registry rules, and the layout the
README promises (a 90/10 canary, an upstream model, a registering TrainingJob) is really there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelyard import api
from modelyard.registry import resolve

from . import examples


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return examples.objects(examples.render())


def _by(rendered: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered if o["kind"] == kind}


def test_every_custom_resource_validates_against_the_api_models(rendered: list[dict[str, Any]]) -> None:
    ours = [o for o in rendered if o["apiVersion"] == "modelyard.io/v1alpha1"]
    assert {o["kind"] for o in ours} == {"ModelEntry", "ModelEndpoint", "TrainingJob"}
    for obj in ours:
        getattr(api, obj["kind"]).model_validate(obj)  # raises, naming the field, when invalid


def test_every_entry_resolves_valid(rendered: list[dict[str, Any]]) -> None:
    for name, body in _by(rendered, "ModelEntry").items():
        result = resolve.resolve(api.ModelEntry.model_validate(body))
        assert result.ok, f"{name}: {result.reason}"
        assert result.capabilities.inference, name


def test_registry_validate_accepts_the_rendered_objects(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    import yaml

    ours = [o for o in rendered if o["apiVersion"] == "modelyard.io/v1alpha1"]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(ours))
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", "registry", "validate", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok ({len(ours)} objects)" in done.stdout


def test_namespaced_objects_land_in_ml_and_entries_stay_cluster_scoped(
    rendered: list[dict[str, Any]],
) -> None:
    assert _by(rendered, "Namespace").keys() == {"ml"}
    for obj in rendered:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in ("ModelEntry", "Namespace"):
            assert namespace is None, obj["metadata"]["name"]
        else:
            assert namespace == "ml", f"{obj['kind']}/{obj['metadata']['name']}"


def test_canary_splits_one_served_name_90_10(rendered: list[dict[str, Any]]) -> None:
    endpoints = _by(rendered, "ModelEndpoint")
    stable, canary = endpoints["chat-stable"]["spec"], endpoints["chat-canary"]["spec"]
    assert (stable["weight"], canary["weight"]) == (90, 10)
    assert stable["servedName"] == canary["servedName"] == "chat"
    assert stable["model"] == canary["model"] == "qwen2-5-0-5b-instruct"
    assert stable["model"] in _by(rendered, "ModelEntry")
    different = {k for k in stable.keys() | canary.keys() if stable.get(k) != canary.get(k)}
    assert different - {"weight", "replicas"}, "the canary must differ in more than its share"
    for spec in (stable, canary):
        entries = {e["spec"].get("servedName") for e in _by(rendered, "ModelEntry").values()}
        assert set(spec.get("fallback", [])) <= entries


def test_upstream_model_reads_its_key_from_a_secret_that_is_not_in_git(
    rendered: list[dict[str, Any]],
) -> None:
    entry = _by(rendered, "ModelEntry")["openai-gpt-4o-mini"]["spec"]
    assert entry["runtime"]["engine"] == "upstream"
    assert entry["upstream"]["baseUrl"] == "https://api.openai.com/v1"
    assert entry["upstream"]["model"] == "gpt-4o-mini"
    assert entry["upstream"]["apiKeySecretRef"] == {"name": "openai-api-key", "key": "api-key"}
    assert _by(rendered, "ModelEndpoint")["openai-gpt-4o-mini"]["spec"]["model"] == "openai-gpt-4o-mini"
    assert not [o for o in rendered if o["kind"] == "Secret"]
    assert "kubectl create secret generic openai-api-key" in (examples.EXAMPLES / "README.md").read_text()


def test_training_job_trains_a_catalog_entry_on_its_configmap_and_registers_the_result(
    rendered: list[dict[str, Any]],
) -> None:
    job = api.TrainingJob.model_validate(_by(rendered, "TrainingJob")["support-bot"])
    assert job.spec.method == "lora"
    assert job.spec.model in _by(rendered, "ModelEntry")
    ref = job.spec.dataset.config_map
    assert ref is not None
    data = _by(rendered, "ConfigMap")[ref.name]["data"][ref.key]
    import json

    records = [json.loads(line) for line in data.splitlines() if line.strip()]
    assert records and all(r["messages"][-1]["role"] == "assistant" for r in records)
    assert job.spec.output.register_as is not None
    assert job.spec.output.register_as.name not in _by(rendered, "ModelEntry")
    claim = job.spec.output.uri.removeprefix("pvc://").split("/")[0]
    assert claim in _by(rendered, "PersistentVolumeClaim")


def test_an_overlay_can_reweight_the_canary(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(examples.EXAMPLES, overlay)}]\n"
        "patches:\n"
        "  - target: {group: modelyard.io, kind: ModelEndpoint, name: chat-canary}\n"
        "    patch: |-\n"
        "      - {op: replace, path: /spec/weight, value: 50}\n"
    )
    endpoints = _by(examples.objects(examples.render(overlay)), "ModelEndpoint")
    assert endpoints["chat-canary"]["spec"]["weight"] == 50
    assert endpoints["chat-stable"]["spec"]["weight"] == 90
