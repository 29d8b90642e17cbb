"""A few LoRA steps on a tiny Llama lower the loss and leave an adapter, a manifest and progress;
a second run with more steps resumes from the first run's last checkpoint."""

from __future__ import annotations

import json
import pathlib
import urllib.request
from typing import Any

import pytest

from modelyard.trainer import config, errors, methods, train

pytestmark = pytest.mark.slow


def _config(model: pathlib.Path, data: pathlib.Path, out: pathlib.Path, **hp: Any) -> config.TrainerConfig:
    return config.from_dict(
        {
            "model": {"name": "tiny", "source": {"provider": "local", "uri": f"file://{model}"}},
            "method": hp.pop("method", "lora"),
            "dataset": {"format": "auto", "path": str(data)},
            "hyperparameters": {
                "learningRate": 0.02,
                "batchSize": 4,
                "gradientAccumulationSteps": 1,
                "warmupSteps": 0,
                **hp,
            },
            "lora": {"r": 8, "loraAlpha": 16, "targetModules": ["q_proj", "v_proj", "up_proj", "down_proj"]},
            "output": {"path": str(out), "uri": f"file://{out}"},
        }
    )


def test_lora_steps_lower_the_loss_and_write_the_adapter(
    tiny_llama: pathlib.Path, chat_dataset: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "out"
    manifest = train.run(_config(tiny_llama, chat_dataset, out, maxSteps=12))
    assert manifest["steps"] == 12 and manifest["resumedFromStep"] == 0
    assert manifest["finalLoss"] < manifest["firstLoss"]
    assert manifest["method"] == "lora" and manifest["baseModel"] == "tiny"
    assert manifest["hyperparameters"]["optim"] in ("adamw_torch", "adamw_8bit")
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    assert json.loads((out / "manifest.json").read_text())["steps"] == 12
    progress = json.loads((out / "progress.json").read_text())
    assert progress["step"] == progress["totalSteps"] == 12 and progress["percent"] == 100
    assert progress["loss"] == pytest.approx(manifest["finalLoss"])


def test_a_second_run_resumes_from_the_last_checkpoint(
    tiny_llama: pathlib.Path,
    chat_dataset: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELYARD_SAVE_STEPS", "3")
    out = tmp_path / "out"
    first = train.run(_config(tiny_llama, chat_dataset, out, maxSteps=6))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-3", "checkpoint-6"]
    second = train.run(_config(tiny_llama, chat_dataset, out, maxSteps=9))
    assert second["resumedFromStep"] == 6 and second["steps"] == 9
    assert second["lossHistory"][0][0] == 7  # the first step this run took
    assert second["finalLoss"] < first["firstLoss"]


def test_progress_is_served_while_training(
    tiny_llama: pathlib.Path, chat_dataset: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from modelyard.trainer import progress

    tracker = progress.Tracker(tmp_path / "progress.json")
    server = progress.serve(tracker, "127.0.0.1", 0)
    try:
        tracker.update(step=3, total_steps=10, epoch=0.5, loss=2.5, learning_rate=0.01)
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/progress", timeout=5) as response:
            served = json.loads(response.read())
    finally:
        server.shutdown()
        server.server_close()
    assert served["step"] == 3 and served["totalSteps"] == 10 and served["percent"] == 30
    assert served["loss"] == 2.5 and served["learningRate"] == 0.01 and served["epoch"] == 0.5
    assert json.loads((tmp_path / "progress.json").read_text()) == served


@pytest.mark.skipif(methods.has_cuda(), reason="this machine has a GPU")
def test_qlora_on_cpu_fails_naming_the_method_and_what_it_needs(
    tiny_llama: pathlib.Path, chat_dataset: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    with pytest.raises(errors.MethodUnavailable, match=r"method qlora .* needs a CUDA GPU"):
        train.run(_config(tiny_llama, chat_dataset, tmp_path / "out", maxSteps=2, method="qlora"))
