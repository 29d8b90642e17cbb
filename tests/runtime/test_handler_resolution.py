"""Which handler serves a model: config.json detection, class paths, the document's names."""

from __future__ import annotations

import pathlib

import pytest

from modelyard.runtime import errors, handlers, loader, options
from modelyard.runtime.handlers import chat, embedding, rerank, speech, vision


@pytest.mark.parametrize(
    ("path", "cls"),
    [
        ("app.models.text_chat.TextChatModel", chat.TextChatModel),
        ("app.models.hf_embedding.HFEmbeddingModel", embedding.HFEmbeddingModel),
        ("app.models.qwen_vl.QwenVLChat", vision.VisionChatModel),
        ("app.models.whisper.WhisperASR", speech.WhisperASR),
        ("TextChatModel", chat.TextChatModel),
        ("modelyard.runtime.handlers.rerank.CrossEncoderReranker", rerank.CrossEncoderReranker),
    ],
)
def test_document_class_paths_map_to_the_built_ins(path: str, cls: type) -> None:
    assert handlers.resolve(path) is cls


def test_unknown_handler_lists_the_built_ins() -> None:
    with pytest.raises(errors.HandlerError, match="WhisperASR"):
        handlers.resolve("nowhere.Nothing")
    with pytest.raises(errors.HandlerError, match="has no class"):
        handlers.resolve("modelyard.runtime.handlers.chat.Missing")


@pytest.mark.parametrize(
    ("model", "cls"),
    [
        ("llama", chat.TextChatModel),
        ("bert", embedding.HFEmbeddingModel),
        ("cross-encoder", rerank.CrossEncoderReranker),
        ("whisper", speech.WhisperASR),
    ],
)
def test_handler_is_detected_from_config_json(models_dir: pathlib.Path, model: str, cls: type) -> None:
    spec = loader.resolve(str(models_dir / model))
    assert spec.provider == "local"
    assert loader.handler_class(spec, loader.make_provider(spec, options.ServerSettings())) is cls


def test_an_unsupported_architecture_says_how_to_serve_it_anyway(tmp_path: pathlib.Path) -> None:
    (tmp_path / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"]}')
    spec = loader.resolve(str(tmp_path))
    with pytest.raises(errors.HandlerError, match="--handler"):
        loader.handler_class(spec, loader.make_provider(spec, options.ServerSettings()))


def test_catalog_names_resolve_with_their_defaults() -> None:
    spec = loader.resolve("meta-llama/Llama-3.2-1B-Instruct")
    assert spec.source == "meta-llama/Llama-3.2-1B-Instruct"
    assert spec.provider == "huggingface"
    assert spec.generation.temperature == 0.7 and spec.generation.max_tokens == 512
    assert spec.max_model_len == 8192
    unknown = loader.resolve("someorg/unknown-model")
    assert unknown.source == unknown.served_name == "someorg/unknown-model" and unknown.provider is None


def test_custom_handler_by_class_path_is_loaded_with_document_arguments(models_dir: pathlib.Path) -> None:
    spec = options.ModelSpec(
        source=str(models_dir / "bert"), served_name="custom", handler="custom_handlers.EchoEmbedding"
    )
    model = loader.load(spec, options.ServerSettings(device="cpu"))
    assert model.kind == "embedding"
    assert model.handler.hf_repo_id == str(models_dir / "bert")
    assert model.handler.kwargs["name"] == "custom"
