"""Model handlers: the built-ins, and finding a handler class by path or by model category.

Importing this package is cheap; the built-in modules (torch, transformers) load only when a
handler class is resolved. The model-server document's class paths
(``app.models.text_chat.TextChatModel`` ...) resolve to the built-ins by their last dotted
name when their module does not exist here.
"""

from __future__ import annotations

import importlib
import importlib.util

from modelyard.runtime import errors

BUILTINS: dict[str, str] = {
    "TextChatModel": "modelyard.runtime.handlers.chat:TextChatModel",
    "QwenVLChat": "modelyard.runtime.handlers.vision:VisionChatModel",
    "VisionChatModel": "modelyard.runtime.handlers.vision:VisionChatModel",
    "HFEmbeddingModel": "modelyard.runtime.handlers.embedding:HFEmbeddingModel",
    "CrossEncoderReranker": "modelyard.runtime.handlers.rerank:CrossEncoderReranker",
    "HFRerankModel": "modelyard.runtime.handlers.rerank:CrossEncoderReranker",
    "WhisperASR": "modelyard.runtime.handlers.speech:WhisperASR",
}

BY_CATEGORY: dict[str, str] = {
    "text-llm": "TextChatModel",
    "vision-vlm": "QwenVLChat",
    "embedding": "HFEmbeddingModel",
    "rerank": "CrossEncoderReranker",
    "speech": "WhisperASR",
}

__all__ = ["BUILTINS", "BY_CATEGORY", "for_category", "resolve"]


def _load(module_name: str, class_name: str, shown: str) -> type:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise errors.HandlerError(f"handler {shown!r}: cannot import {module_name}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise errors.HandlerError(f"handler {shown!r}: {module_name} has no class {class_name}")
    return cls


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def resolve(class_path: str) -> type:
    """The handler class for a class path, a built-in name, or a document class path."""
    module_name, _, class_name = class_path.rpartition(".")
    if module_name and _module_exists(module_name):
        return _load(module_name, class_name, class_path)
    builtin = BUILTINS.get(class_name)
    if builtin is None:
        known = ", ".join(sorted(BUILTINS))
        raise errors.HandlerError(
            f"handler {class_path!r}: no such module or built-in handler; built-ins: {known}", param="handler"
        )
    module_name, _, name = builtin.partition(":")
    return _load(module_name, name, class_path)


def for_category(category: str) -> type:
    """The built-in handler class for a model category (text-llm, embedding, ...)."""
    name = BY_CATEGORY.get(category)
    if name is None:
        raise errors.HandlerError(f"no built-in handler for category {category!r}")
    return resolve(name)
