"""vLLM with live adapters: ``--enable-lora --max-loras N --max-lora-rank R`` and
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (vLLM serves ``/v1/load_lora_adapter`` only with it),
built from the runtime's own ``--max-adapters`` / ``--max-lora-rank`` / ``--adapters-file``."""

from __future__ import annotations

import json
import os
import pathlib
import shlex
from typing import Any

import pytest

from modelyard import cli
from modelyard.api import lora
from modelyard.runtime import errors, vllm


def test_the_pure_lora_flags() -> None:
    assert vllm.vllm_lora_args(8, 64) == ["--enable-lora", "--max-loras", "8", "--max-lora-rank", "64"]
    assert vllm.vllm_lora_args(1, 16) == ["--enable-lora", "--max-loras", "1", "--max-lora-rank", "16"]
    with pytest.raises(errors.LoadError, match="must be positive"):
        vllm.vllm_lora_args(0, 64)


def test_live_lora_turns_lora_on_with_the_bounds_and_the_runtime_update_env() -> None:
    o = vllm.VllmOptions(model="m", live_lora=True, max_loras=4, max_lora_rank=32)
    args = vllm.build_vllm_args(o)
    at = args.index("--enable-lora")
    assert args[at : at + 5] == ["--enable-lora", "--max-loras", "4", "--max-lora-rank", "32"]
    assert "--lora-modules" not in args
    assert vllm.environment(o) == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}


def test_live_lora_defaults_and_adapters_at_start() -> None:
    o = vllm.VllmOptions(model="m", live_lora=True, lora=(("sql", "file:///a/sql"),))
    args = vllm.build_vllm_args(o)
    at = args.index("--enable-lora")
    assert args[at:] == [
        "--enable-lora", "--lora-modules", "sql=/a/sql",
        "--max-loras", str(lora.DEFAULT_MAX_ADAPTERS), "--max-lora-rank", str(lora.DEFAULT_MAX_LORA_RANK),
    ]  # fmt: skip


def test_static_adapters_alone_keep_the_runtime_update_off() -> None:
    o = vllm.VllmOptions(model="m", lora=(("sql", "/a/sql"),))
    assert vllm.environment(o) == {}
    assert "--max-lora-rank" not in vllm.build_vllm_args(o)


def test_exec_sets_the_env_for_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "False")  # restored after the test
    seen: list[Any] = []
    vllm.exec_vllm(vllm.VllmOptions(model="m", live_lora=True), execvp=lambda p, a: seen.append(a))
    assert os.environ["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "--enable-lora" in seen[0]


def test_the_cli_builds_them_from_its_flags_and_the_adapters_file(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    adapters = tmp_path / "adapters.json"
    adapters.write_text(json.dumps([{"name": "sql", "path": "/models/sql"}]))
    argv = ["runtime", "--engine", "vllm", "--model", "org/m", "--dry-run"]
    assert (
        cli.main([*argv, "--adapters-file", str(adapters), "--max-adapters", "3", "--max-lora-rank", "16"])
        == 0
    )
    words = shlex.split(capsys.readouterr().out)
    assert words[0] == "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
    at = words.index("--enable-lora")
    assert words[at : at + 7] == [
        "--enable-lora", "--lora-modules", "sql=/models/sql", "--max-loras", "3", "--max-lora-rank", "16",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    plain = capsys.readouterr().out
    assert "--enable-lora" not in plain and "VLLM_ALLOW" not in plain


def test_a_bad_adapters_file_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    adapters = tmp_path / "adapters.json"
    adapters.write_text(json.dumps([{"name": "sql"}]))
    argv = ["runtime", "--engine", "vllm", "--model", "org/m", "--dry-run", "--adapters-file", str(adapters)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "--adapters-file" in err and "path" in err
