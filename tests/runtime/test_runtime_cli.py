"""``modelyard runtime``: serving from MODELS in a real process, flags, vLLM exec, download."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Any

import openai
import pytest

from kit import free_port, wait_serving
from modelyard import cli


def test_models_env_serves_several_models_in_one_process(models_dir: pathlib.Path) -> None:
    port = free_port()
    llama, bert = str(models_dir / "llama"), str(models_dir / "bert")
    env = {**os.environ, "MODELS": f"{llama},{bert}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelyard",
            "runtime",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = lambda: proc.stdout.read() if proc.stdout else ""  # noqa: E731
        wait_serving(proc, f"http://127.0.0.1:{port}/ready", 240, output)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        assert {m.id for m in client.models.list().data} == {llama, bert}
        reply = client.chat.completions.create(
            model=llama, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        assert reply.usage.completion_tokens <= 3
        assert len(client.embeddings.create(model=bert, input="hi").data[0].embedding) == 32
    finally:
        proc.terminate()
        proc.wait(20)


def test_flags_shape_the_model_spec(models_dir: pathlib.Path) -> None:
    from modelyard.runtime import cli as runtime_cli

    args = cli.build_parser().parse_args(
        ["runtime", "--model", str(models_dir / "bert"), "--served-name", "emb", "--pooling", "cls",
         "--temperature", "0.2", "--max-tokens", "9", "--max-model-len", "64"]
    )  # fmt: skip
    (spec,) = runtime_cli._specs(args)
    assert (spec.served_name, spec.pooling, spec.max_model_len) == ("emb", "cls", 64)
    assert spec.generation.temperature == 0.2 and spec.generation.max_tokens == 9


def test_no_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.delenv("MODELS", raising=False)
    assert cli.main(["runtime"]) == 1
    assert "give --model" in capsys.readouterr().err


def test_engine_vllm_execs_the_vllm_server_with_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(os, "execvp", lambda program, argv: seen.append(argv))
    code = cli.main(
        ["runtime", "--engine", "vllm", "--model", "org/model", "--served-name", "m", "--port", "8080",
         "--max-model-len", "4096", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.85",
         "--quantization", "fp8", "--tensor-parallel-size", "2", "--lora", "sql=file:///a/sql",
         "--temperature", "0.5", "--engine-arg", "enforce-eager", "--engine-arg", "max_num_seqs=8"]
    )  # fmt: skip
    assert code == 0
    argv = seen[0]
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(argv)
    for part in (
        "--model org/model",
        "--served-model-name m",
        "--port 8080",
        "--max-model-len 4096",
        "--dtype bfloat16",
        "--gpu-memory-utilization 0.85",
        "--quantization fp8",
        "--tensor-parallel-size 2",
        "--enable-lora --lora-modules sql=/a/sql",
        '--override-generation-config {"temperature":0.5}',
        "--enforce-eager --max-num-seqs 8",
    ):
        assert part in joined


def test_lora_on_the_transformers_engine_takes_one_real_adapter(capsys: Any, tmp_path: pathlib.Path) -> None:
    assert cli.main(["runtime", "--model", "x", "--lora", "a=file:///b", "--lora", "c=file:///d"]) == 1
    assert "at most one --lora" in capsys.readouterr().err
    assert cli.main(["runtime", "--model", "x", "--lora", f"a=file://{tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert "not a peft adapter" in err or "needs peft" in err


def test_download_with_downloads_forbidden_fails_fast(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, capsys: Any
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = cli.main(["runtime", "download", "--model", "someorg/absent", "--cache-dir", str(tmp_path)])
    assert code == 1
    assert "HF_HUB_OFFLINE=1" in capsys.readouterr().err


def test_download_of_a_local_directory_prints_its_path(models_dir: pathlib.Path, capsys: Any) -> None:
    assert cli.main(["runtime", "download", "--model", str(models_dir / "llama")]) == 0
    assert str(models_dir / "llama") in capsys.readouterr().out


@pytest.mark.timeout(60)  # a hang guard: startup never reaches the network
def test_startup_with_downloads_forbidden_fails_fast_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, capsys: Any
) -> None:
    monkeypatch.setenv("AUTO_DOWNLOAD_MODELS", "0")
    code = cli.main(["runtime", "--model", "someorg/not-cached", "--cache-dir", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "AUTO_DOWNLOAD_MODELS=0" in err and "modelyard runtime download --model someorg/not-cached" in err


def test_models_yaml_names_resolve_with_their_handler_and_defaults(
    models_dir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.runtime import cli as runtime_cli
    from modelyard.runtime import loader, options

    catalog_file = tmp_path / "models.yaml"
    catalog_file.write_text(
        "models:\n"
        "  - name: my-chat\n"
        f"    hf_repo_id: {models_dir / 'llama'}\n"
        "    handler: app.models.text_chat.TextChatModel\n"
        "    defaults: {temperature: 0.0, max_tokens: 3}\n"
    )
    monkeypatch.setenv("MODELS", "my-chat,openai/whisper-tiny")
    args = cli.build_parser().parse_args(["runtime", "--catalog", str(catalog_file)])
    chat_spec, whisper_spec = runtime_cli._specs(args)
    assert chat_spec.served_name == "my-chat" and chat_spec.source == str(models_dir / "llama")
    assert chat_spec.handler == "app.models.text_chat.TextChatModel"
    assert chat_spec.generation.max_tokens == 3
    assert whisper_spec.source == "openai/whisper-tiny"  # the built-in catalog still answers
    served = loader.load(chat_spec, options.ServerSettings(device="cpu"))
    assert served.defaults.max_tokens == 3 and served.kind == "chat"


def test_dry_run_prints_the_vllm_command(capsys: Any) -> None:
    assert cli.main(["runtime", "--engine", "vllm", "--model", "org/m", "--dtype", "half", "--dry-run"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == (
        "python -m vllm.entrypoints.openai.api_server --model org/m --served-model-name org/m "
        "--host 0.0.0.0 --port 8000 --dtype half"
    )
