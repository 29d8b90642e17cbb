"""A trainer killed while writing a checkpoint resumes from the last finished one, not from the
half-written directory (which made the resumed job fail: "Can't find a valid checkpoint")."""

from __future__ import annotations

from pathlib import Path

from modelyard.trainer import train


def _checkpoint(root: Path, step: int, finished: bool) -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"weights")
    if finished:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_the_newest_finished_checkpoint_is_resumed(tmp_path: Path) -> None:
    _checkpoint(tmp_path, 50, finished=True)
    done = _checkpoint(tmp_path, 100, finished=True)
    _checkpoint(tmp_path, 150, finished=False)  # the kill came while this one was written
    (tmp_path / "checkpoint-notes").mkdir()
    assert train.last_complete_checkpoint(tmp_path) == str(done)


def test_no_finished_checkpoint_starts_over(tmp_path: Path) -> None:
    _checkpoint(tmp_path, 100, finished=False)
    assert train.last_complete_checkpoint(tmp_path) is None
