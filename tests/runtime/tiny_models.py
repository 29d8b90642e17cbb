"""The tiny test models, re-exported from :mod:`modelyard.local.tinymodels` (their one home).

Tests import this module by name (``import tiny_models``) after putting this directory on
``sys.path``; ``modelyard quickstart`` builds its chat model with the same code.
"""

from modelyard.local.tinymodels import (
    CHAT_TEMPLATE,
    CORPUS,
    WHISPER_SPECIALS,
    build_bert_embedding,
    build_cross_encoder,
    build_llama,
    build_whisper,
    wav_bytes,
)

__all__ = [
    "CHAT_TEMPLATE",
    "CORPUS",
    "WHISPER_SPECIALS",
    "build_bert_embedding",
    "build_cross_encoder",
    "build_llama",
    "build_whisper",
    "wav_bytes",
]
