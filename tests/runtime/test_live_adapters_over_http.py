"""Live LoRA adapters in a running ``modelyard runtime`` process, over its HTTP API.

Two adapters made here over the tiny Llama (random, non-zero LoRA weights, so their answers
differ from the base) are loaded while the process serves: each answers with the greedy tokens
of the base with that adapter merged in offline, the base keeps its own, and a batch of all
three at once gives each what it gives alone. Bad adapters get a 400 naming the cause while the
process goes on serving; ``--max-adapters`` is an explicit 409; an unloaded name is a 404; the
adapters file loads before ``/ready`` and is followed when it changes.
"""

from __future__ import annotations

import concurrent.futures
import json
import pathlib
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import kit

pytestmark = pytest.mark.slow

TOKENS = 12
PROMPTS = ["hello there", "what is a pod? " * 6]  # the second spans several prefix-cache blocks


def make_adapter(base: pathlib.Path, out: pathlib.Path, seed: int, rank: int = 4) -> pathlib.Path:
    """A peft LoRA over the model at ``base`` with random (non-zero) A and B, saved at ``out``."""
    import peft
    import torch
    import transformers

    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base))
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=4 * rank,
        target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
        init_lora_weights=False,
    )
    peft.get_peft_model(model, config).save_pretrained(str(out))
    return out


def other_base(path: pathlib.Path) -> pathlib.Path:
    """A Llama whose layers have other sizes than the tiny one's (an adapter's wrong base)."""
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(str(path))
    return path


def greedy(handler: Any, prompt: str) -> str:
    from modelyard.runtime import sampling

    params = sampling.SamplingParams(max_tokens=TOKENS, min_tokens=TOKENS)
    return str(handler.generate([{"role": "user", "content": prompt}], sampling_params=params).text)


@pytest.fixture(scope="module")
def made(models_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("adapters")
    llama = models_dir / "llama"
    (root / "empty").mkdir()
    weightless = root / "weightless"
    make_adapter(llama, weightless, seed=3)
    (weightless / "adapter_model.safetensors").unlink()
    return {
        "a": make_adapter(llama, root / "a", seed=1),
        "b": make_adapter(llama, root / "b", seed=2),
        "wide": make_adapter(llama, root / "wide", seed=4, rank=16),
        "wrong": make_adapter(other_base(root / "other-base"), root / "wrong", seed=5),
        "empty": root / "empty",
        "weightless": weightless,
    }


@pytest.fixture(scope="module")
def expected(
    models_dir: pathlib.Path, made: dict[str, pathlib.Path], tmp_path_factory: Any
) -> dict[str, Any]:
    """Greedy answers of the base, and of the base with A or B merged offline (``--lora``'s way)."""
    import tempfile

    from modelyard.runtime import adapters, providers
    from modelyard.runtime.handlers import chat

    llama = str(models_dir / "llama")
    tempfile.tempdir = str(tmp_path_factory.mktemp("merged"))
    local = providers.create_provider("local")
    out: dict[str, Any] = {}
    for name in ("base", "a", "b"):
        path = llama if name == "base" else str(adapters.merge(llama, str(made[name])))
        handler = chat.TextChatModel(path, "cpu", name=name, provider=local, prefix_cache_bytes=0)
        out[name] = [greedy(handler, p) for p in PROMPTS]
    tempfile.tempdir = None
    assert out["a"] != out["base"] and out["b"] != out["base"] and out["a"] != out["b"]
    return out


class Runtime:
    def __init__(self, url: str, adapters_file: pathlib.Path, process: kit.Process) -> None:
        self.url, self.adapters_file, self.process = url, adapters_file, process
        self.models_at_ready: list[dict[str, Any]] = []

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(self.url + path, json=body, timeout=120)

    def load(self, name: str, path: pathlib.Path | str) -> requests.Response:
        return self.post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})

    def unload(self, name: str) -> requests.Response:
        return self.post("/v1/unload_lora_adapter", {"lora_name": name})

    def models(self) -> dict[str, dict[str, Any]]:
        return {m["id"]: m for m in requests.get(self.url + "/v1/models", timeout=10).json()["data"]}

    def ask(self, model: str, prompt: str) -> requests.Response:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": TOKENS,
            "ignore_eos": True,
            "temperature": 0,
        }
        return self.post("/v1/chat/completions", body)

    def answer(self, model: str, prompt: str) -> str:
        response = self.ask(model, prompt)
        assert response.status_code == 200, response.text
        return str(response.json()["choices"][0]["message"]["content"])


@pytest.fixture(scope="module")
def runtime(
    models_dir: pathlib.Path, made: dict[str, pathlib.Path], tmp_path_factory: Any
) -> Iterator[Runtime]:
    work = tmp_path_factory.mktemp("runtime")
    adapters_file = work / "adapters.json"
    adapters_file.write_text(json.dumps([{"name": "file-a", "path": str(made["a"])}]))
    hub = work / "hf"  # a Hugging Face cache holding adapter B as the repo acme/b (hf://)
    snapshot = hub / "models--acme--b" / "snapshots" / ("0" * 40)
    shutil.copytree(made["b"], snapshot)
    (hub / "models--acme--b" / "refs").mkdir()
    (hub / "models--acme--b" / "refs" / "main").write_text("0" * 40)
    port = kit.free_port()
    process = kit.Process(
        ["runtime", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
         "--model", str(models_dir / "llama"), "--served-name", "tiny",
         "--adapters-file", str(adapters_file), "--adapters-sync-seconds", "0.5",
         "--max-adapters", "3", "--max-lora-rank", "8", "--torch-threads", "2", "--cache-dir", str(hub)],
        work / "runtime.log", env={"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    process.start()
    assert process.process is not None
    url = f"http://127.0.0.1:{port}"
    rt = Runtime(url, adapters_file, process)
    try:
        kit.wait_serving(process.process, f"{url}/ready", 240, process.tail)
        rt.models_at_ready = list(rt.models().values())
        yield rt
    finally:
        process.stop()


def test_the_adapters_file_is_loaded_before_ready(runtime: Runtime, made: dict[str, pathlib.Path]) -> None:
    assert {"id": "file-a", "parent": "tiny", "root": str(made["a"])}.items() <= next(
        m for m in runtime.models_at_ready if m["id"] == "file-a"
    ).items()


def test_each_adapter_answers_with_its_own_weights_and_the_base_is_unchanged(
    runtime: Runtime, made: dict[str, pathlib.Path], expected: dict[str, Any]
) -> None:
    loaded = runtime.load("live-b", made["b"])
    assert loaded.status_code == 200, loaded.text
    assert loaded.json() == {"status": "loaded", "lora_name": "live-b"}
    assert runtime.load("live-b", made["b"]).status_code == 200  # re-sent: idempotent
    assert runtime.models()["live-b"]["parent"] == "tiny"
    for i, prompt in enumerate(PROMPTS):
        assert runtime.answer("tiny", prompt) == expected["base"][i]
        assert runtime.answer("file-a", prompt) == expected["a"][i]
        assert runtime.answer("live-b", prompt) == expected["b"][i]
        # the prompt's prefix is cached now under each; each still gets its own answer
        assert runtime.answer("live-b", prompt) == expected["b"][i]
        assert runtime.answer("tiny", prompt) == expected["base"][i]


def test_a_mixed_batch_gives_each_row_what_it_gives_alone(
    runtime: Runtime, made: dict[str, pathlib.Path], expected: dict[str, Any]
) -> None:
    assert runtime.load("live-b", made["b"]).status_code == 200
    jobs = [
        (model, i) for _ in range(3) for model in ("tiny", "file-a", "live-b") for i in range(len(PROMPTS))
    ]
    names = {"tiny": "base", "file-a": "a", "live-b": "b"}
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(lambda job: runtime.answer(job[0], PROMPTS[job[1]]), jobs))
    assert answers == [expected[names[model]][i] for model, i in jobs]


def test_bad_adapters_get_a_400_naming_the_cause_and_the_process_keeps_serving(
    runtime: Runtime, made: dict[str, pathlib.Path], expected: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    cases = {
        "nowhere": (tmp_path / "nowhere", "does not exist"),
        "empty": (made["empty"], "no adapter_config.json"),
        "weightless": (made["weightless"], "no adapter weights"),
        "wrong": (made["wrong"], "wrong base"),
        "wide": (made["wide"], "rank 16 is over this server's --max-lora-rank 8"),
    }
    for name, (path, cause) in cases.items():
        response = runtime.load(name, path)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert cause in error["message"] and str(path) in error["message"], error
        assert error["param"] == "lora_path"
    taken = runtime.load("file-a", made["b"])
    assert taken.status_code == 409 and "already loaded from" in taken.json()["error"]["message"]
    missing = runtime.post("/v1/load_lora_adapter", {"lora_name": "x"})
    assert missing.status_code == 400 and "lora_path" in missing.json()["error"]["message"]
    assert runtime.process.alive
    assert runtime.answer("tiny", PROMPTS[0]) == expected["base"][0]
    assert runtime.answer("file-a", PROMPTS[0]) == expected["a"][0]
    status = requests.get(runtime.url + "/v1/adapters", timeout=10).json()
    errors = {e["name"]: e["message"] for e in status["errors"]}
    assert set(cases) | {"file-a"} <= set(errors) and "wrong base" in errors["wrong"]
    assert status["maxAdapters"] == 3
    assert not set(cases) & set(runtime.models())


def test_max_adapters_is_an_explicit_409_and_nothing_is_evicted(
    runtime: Runtime, made: dict[str, pathlib.Path]
) -> None:
    for name in ("file-a", "live-b"):
        assert name in runtime.models() or runtime.load(name, made[name[-1]]).status_code == 200
    third = runtime.load("third", made["a"])
    assert third.status_code == 200, third.text
    over = runtime.load("fourth", made["b"])
    assert over.status_code == 409
    assert "maxAdapters reached" in over.json()["error"]["message"] and "--max-adapters 3" in over.text
    assert {"file-a", "live-b", "third"} <= set(runtime.models())
    assert runtime.unload("third").status_code == 200


def test_unloading_one_adapter_404s_it_and_leaves_the_other(
    runtime: Runtime, made: dict[str, pathlib.Path], expected: dict[str, Any]
) -> None:
    assert runtime.load("gone", made["b"]).status_code == 200
    assert runtime.answer("gone", PROMPTS[0]) == expected["b"][0]
    response = runtime.unload("gone")
    assert response.status_code == 200 and response.json()["lora_name"] == "gone"
    asked = runtime.ask("gone", PROMPTS[0])
    assert asked.status_code == 404 and asked.json()["error"]["param"] == "model"
    assert "'gone'" in asked.json()["error"]["message"]
    assert "gone" not in runtime.models()
    again = runtime.unload("gone")
    assert again.status_code == 404 and "no adapter 'gone' is loaded" in again.json()["error"]["message"]
    assert runtime.answer("file-a", PROMPTS[0]) == expected["a"][0]
    assert runtime.answer("tiny", PROMPTS[0]) == expected["base"][0]


def test_an_unload_lets_the_adapters_running_request_finish(
    runtime: Runtime, made: dict[str, pathlib.Path]
) -> None:
    assert runtime.load("busy", made["a"]).status_code == 200
    body = {
        "model": "busy",
        "messages": [{"role": "user", "content": "go on"}],
        "max_tokens": 400,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        requests.post(runtime.url + "/v1/chat/completions", json=body, stream=True, timeout=120) as stream,
    ):
        lines = stream.iter_lines(decode_unicode=True)
        next(line for line in lines if line.startswith("data: "))  # it runs
        unloading = pool.submit(runtime.unload, "busy")
        kit.wait_for(lambda: "busy" not in runtime.models(), 30, "busy to leave /v1/models")
        assert runtime.ask("busy", PROMPTS[0]).status_code == 404  # no new requests for it
        events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
        assert unloading.result(timeout=60).status_code == 200
    assert events[-1] == "[DONE]"
    usage = json.loads(events[-2])["usage"]
    assert usage["completion_tokens"] == 400  # the running request finished with the adapter


def test_the_adapters_file_is_followed_when_it_changes(
    runtime: Runtime, made: dict[str, pathlib.Path], expected: dict[str, Any]
) -> None:
    entries = [{"name": "file-a", "path": str(made["a"])}, {"name": "file-b", "path": str(made["b"])}]
    runtime.adapters_file.write_text(json.dumps(entries))
    kit.wait_for(lambda: "file-b" in runtime.models(), 60, "file-b to load from the file")
    assert runtime.answer("file-b", PROMPTS[0]) == expected["b"][0]
    runtime.adapters_file.write_text(json.dumps(entries[1:]))
    kit.wait_for(lambda: "file-a" not in runtime.models(), 60, "file-a to unload with the file")
    assert runtime.ask("file-a", PROMPTS[0]).status_code == 404
    assert runtime.answer("file-b", PROMPTS[0]) == expected["b"][0]


def test_metrics_count_loads_and_name_the_adapters_as_vllm_does(runtime: Runtime) -> None:
    text = requests.get(runtime.url + "/metrics", timeout=10).text
    loaded = len([m for m in runtime.models().values() if m.get("parent")])
    assert kit.metric(text, "modelyard_runtime_adapters_loaded") == loaded
    assert kit.metric(text, "modelyard_runtime_adapter_loads_total", outcome="loaded") >= 3
    assert kit.metric(text, "modelyard_runtime_adapter_loads_total", outcome="failed") >= 5
    assert kit.metric(text, "vllm:lora_requests_info", max_lora="3") > 0


def test_lora_requests_info_names_the_adapter_of_a_running_request(runtime: Runtime) -> None:
    def running() -> str:
        text = requests.get(runtime.url + "/metrics", timeout=10).text
        return next((line for line in text.splitlines() if line.startswith("vllm:lora_requests_info{")), "")

    body = {
        "model": "file-b",
        "messages": [{"role": "user", "content": "go on"}],
        "max_tokens": 3000,
        "ignore_eos": True,
        "stream": True,
    }
    with requests.post(runtime.url + "/v1/chat/completions", json=body, stream=True, timeout=120) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines(decode_unicode=True)
        # the first chunk (the role) may be sent before the sequence joins the batch; a token may not
        next(line for line in lines if line.startswith("data: ") and '"content":"' in line)
        for _ in range(300):  # a generous bound: the stream runs for thousands of tokens
            line = running()
            if 'running_lora_adapters="file-b"' in line:
                break
            time.sleep(0.2)
        assert 'running_lora_adapters="file-b"' in line and 'max_lora="3"' in line, line


def test_an_hf_adapter_is_read_from_the_model_cache(runtime: Runtime, expected: dict[str, Any]) -> None:
    """``hf://acme/b`` is adapter B's files in the runtime's Hugging Face cache (offline here)."""
    for name in [n for n, m in runtime.models().items() if m.get("parent") and n != "file-a"]:
        runtime.unload(name)  # room under --max-adapters, whatever the tests before left
    loaded = runtime.load("hub-b", "hf://acme/b")
    assert loaded.status_code == 200, loaded.text
    assert runtime.models()["hub-b"]["root"] == "hf://acme/b"
    assert [runtime.answer("hub-b", p) for p in PROMPTS] == expected["b"]
    missing = runtime.load("hub-x", "hf://acme/missing")
    assert missing.status_code == 400 and "hf://acme/missing" in missing.text, missing.text
    assert runtime.unload("hub-b").status_code == 200
