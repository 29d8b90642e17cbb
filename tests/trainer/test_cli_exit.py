"""``modelyard train`` exits 2 (do not retry) on a bad dataset and leaves the line in the termination log;
on success the termination message carries the final progress."""

from __future__ import annotations

import json
import pathlib

import pytest

from modelyard import cli


def _write_config(tmp_path: pathlib.Path, model: pathlib.Path, data: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model": {"name": "tiny", "source": {"uri": f"file://{model}"}},
                "method": "lora",
                "dataset": {"path": str(data)},
                "hyperparameters": {"maxSteps": 2, "batchSize": 2, "gradientAccumulationSteps": 1},
                "lora": {"r": 2, "targetModules": ["q_proj"]},
                "output": {"path": str(tmp_path / "out"), "uri": "file:///out"},
            }
        )
    )
    return path


def test_a_bad_line_fails_with_its_number_in_the_termination_log(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "fine"}\n{"text": 3}\n')
    log = tmp_path / "termination-log"
    monkeypatch.setenv("MODELYARD_TERMINATION_LOG", str(log))
    config = _write_config(tmp_path, tmp_path / "no-model-needed", data)
    assert cli.main(["train", "--config", str(config), "--progress-port", "0"]) == 2
    assert log.read_text().startswith("dataset line 3: text records need a non-empty string 'text'")


@pytest.mark.slow
def test_success_reports_final_progress(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny_llama: pathlib.Path,
    chat_dataset: pathlib.Path,
) -> None:
    log = tmp_path / "termination-log"
    monkeypatch.setenv("MODELYARD_TERMINATION_LOG", str(log))
    config = _write_config(tmp_path, tiny_llama, chat_dataset)
    assert cli.main(["train", "--config", str(config), "--progress-port", "0"]) == 0
    message = json.loads(log.read_text())
    assert message["progress"]["step"] == 2 and message["manifest"]["steps"] == 2
