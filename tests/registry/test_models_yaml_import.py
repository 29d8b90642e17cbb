"""models.yaml + models.local.yaml import to merged ModelEntry objects, and back."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from modelyard import api
from modelyard.registry import errors, manifests, models_yaml

CATALOGS = pathlib.Path(__file__).parent / "fixtures" / "catalogs"


def _by_served(entries: list[api.ModelEntry]) -> dict[str, api.ModelEntry]:
    return {e.spec.resolved_served_name: e for e in entries}


def test_local_file_overrides_by_repo_and_appends_new_entries() -> None:
    entries = _by_served([models_yaml.to_entry(m) for m in models_yaml.load(CATALOGS / "models.yaml")])
    assert list(entries) == [
        "BAAI/bge-m3",
        "Qwen/Qwen3-4B-Instruct-2507",
        "openai/whisper-tiny",
        "gpt-4o",
        "my-chat",
    ]
    qwen = entries["Qwen/Qwen3-4B-Instruct-2507"].spec
    assert qwen.generation_defaults is not None
    assert (qwen.generation_defaults.temperature, qwen.generation_defaults.top_p) == (0.2, 0.9)
    assert qwen.generation_defaults.max_tokens == 512
    assert qwen.capabilities is not None and qwen.capabilities.structured_outputs
    mine = entries["my-chat"]
    assert mine.name == "my-chat"
    assert mine.spec.source.repo == "my-org/my-chat-model"
    assert mine.spec.runtime is not None and mine.spec.runtime.handler == "app.models.my_chat.MyChatModel"


def test_known_handlers_give_the_category() -> None:
    entries = _by_served([models_yaml.to_entry(m) for m in models_yaml.load(CATALOGS / "models.yaml")])
    assert entries["BAAI/bge-m3"].spec.category == "embedding"
    assert entries["openai/whisper-tiny"].spec.category == "speech"
    assert entries["my-chat"].spec.category is None  # a custom handler: resolved from config later


def test_upstream_proxy_reads_its_key_from_a_secret() -> None:
    gpt = _by_served([models_yaml.to_entry(m) for m in models_yaml.load(CATALOGS / "models.yaml")])["gpt-4o"]
    assert gpt.spec.engine == "upstream"
    assert gpt.spec.upstream is not None and gpt.spec.upstream.api_key_secret_ref is not None
    assert gpt.spec.upstream.api_key_secret_ref.key == "OPENAI_API_KEY"
    assert gpt.metadata.annotations == {"modelyard.io/skip-download": "true"}


def test_without_a_local_file_only_the_catalog_is_read(tmp_path: pathlib.Path) -> None:
    shutil.copy(CATALOGS / "models.yaml", tmp_path / "models.yaml")
    assert len(models_yaml.load(tmp_path / "models.yaml")) == 4


def test_round_trip_through_modelentry_keeps_every_field(tmp_path: pathlib.Path) -> None:
    original = models_yaml.load(CATALOGS / "models.yaml")
    entries = [models_yaml.to_entry(m) for m in original]
    (tmp_path / "models.yaml").write_text(models_yaml.dump(entries))
    again = models_yaml.load(tmp_path / "models.yaml")
    normalise = [m.model_copy(update={"name": m.name or m.hf_repo_id}) for m in original]
    assert [m.model_copy(update={"name": m.name or m.hf_repo_id}) for m in again] == normalise
    # and through the manifest text too
    reread = manifests.load_resources(manifests.dump(entries), "dump")
    assert [r.to_wire() for r in reread] == [e.to_wire() for e in entries]


def test_invalid_entries_are_reported_with_entry_and_field(tmp_path: pathlib.Path) -> None:
    (tmp_path / "models.yaml").write_text(
        yaml.safe_dump(
            {
                "models": [
                    {"hf_repo_id": "org/ok", "handler": "a.B"},
                    {"hf_repo_id": "org/no-handler"},
                    {"name": "warm", "hf_repo_id": "org/w", "handler": "a.B", "defaults": {"temperature": 9}},
                    {"hf_repo_id": "org/typo", "handler": "a.B", "pooling": "median"},
                ]
            }
        )
    )
    with pytest.raises(errors.CatalogError) as caught:
        models_yaml.load(tmp_path / "models.yaml")
    problems = caught.value.problems
    assert "models[1] (org/no-handler): handler: Field required" in problems
    assert any(p.startswith("models[2] (warm): defaults.temperature:") for p in problems)
    assert any(p.startswith("models[3] (org/typo): pooling: must be one of") for p in problems)
    assert len(problems) == 3


def test_import_command_prints_manifests_that_validate() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "modelyard", "registry", "import", str(CATALOGS / "models.yaml")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    entries = manifests.load_resources(out, "stdout")
    assert [e.name for e in entries] == [
        "baai-bge-m3",
        "qwen-qwen3-4b-instruct-2507",
        "openai-whisper-tiny",
        "gpt-4o",
        "my-chat",
    ]


def test_import_command_fails_naming_the_field(tmp_path: pathlib.Path) -> None:
    (tmp_path / "models.yaml").write_text("models:\n  - hf_repo_id: org/x\n")
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", "registry", "import", str(tmp_path / "models.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "models[0] (org/x): handler: Field required" in result.stderr
