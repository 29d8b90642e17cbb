"""The trainer fills what the operator's merged config leaves unset with the Model Garden defaults."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from modelyard.trainer import config, errors


def _raw(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "trainingJob": {"namespace": "ns", "name": "tune"},
        "model": {"name": "base", "source": {"provider": "local", "uri": "file:///models/tiny"}},
        "method": "lora",
        "dataset": {"format": "auto", "path": "/data/configmap/dataset.jsonl"},
        "hyperparameters": {"learningRate": 0.001, "maxSteps": 20, "batchSize": None},
        "lora": {"r": 4, "targetModules": ["q_proj"]},
        "output": {"path": "/output/out", "uri": "pvc://out/run", "register": {"name": "tuned"}},
    }
    raw.update(over)
    return raw


def test_overrides_win_and_unset_keys_take_defaults() -> None:
    cfg = config.from_dict(_raw())
    assert cfg.hyperparameters["learning_rate"] == 0.001
    assert cfg.hyperparameters["max_steps"] == 20
    assert cfg.hyperparameters["batch_size"] == 2  # null falls back
    assert cfg.hyperparameters["optim"] == "adamw_8bit"
    assert cfg.lora == {**config.LORA_DEFAULTS, "r": 4, "target_modules": ["q_proj"]}
    assert cfg.model_path == "/models/tiny" and cfg.output_uri == "pvc://out/run"
    assert (cfg.namespace, cfg.job_name) == ("ns", "tune")


def test_full_fine_tune_has_no_lora_and_repo_sources_resolve() -> None:
    cfg = config.from_dict(_raw(method="full", model={"name": "b", "source": {"repo": "org/m"}}))
    assert cfg.lora is None and cfg.model_path == "org/m"


def test_pvc_models_resolve_under_models() -> None:
    cfg = config.from_dict(_raw(model={"name": "b", "source": {"uri": "pvc://claim/dir"}}))
    assert cfg.model_path == "/models/claim/dir"


def test_malformed_configs_say_what_is_wrong(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.ConfigError, match="method 'dpo' is not one of"):
        config.from_dict(_raw(method="dpo"))
    broken = _raw()
    del broken["dataset"]
    with pytest.raises(errors.ConfigError, match="missing or malformed"):
        config.from_dict(broken)
    path = tmp_path / "config.json"
    path.write_text(json.dumps([1]))
    with pytest.raises(errors.ConfigError, match="not a JSON object"):
        config.load(path)
