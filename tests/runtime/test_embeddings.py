"""Embeddings through the openai client: float and base64, normalised, dimensions, real MiniLM."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np


def test_float_and_base64_encodings_carry_the_same_vectors(client: Any) -> None:
    texts = ["hello world", "a cat sat on the mat"]
    floats = client.embeddings.create(model="tiny-bert", input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert len(floats.data[0].embedding) == 32
    raw = client.with_raw_response.embeddings.create(model="tiny-bert", input=texts, encoding_format="base64")
    b64 = raw.http_response.json()["data"]
    decoded = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in b64]
    for got, want in zip(decoded, floats.data, strict=True):
        assert np.allclose(got, want.embedding, atol=1e-6)
    # the client's own default (base64, decoded for you) gives the same numbers
    default = client.embeddings.create(model="tiny-bert", input=texts)
    assert np.allclose(default.data[1].embedding, floats.data[1].embedding, atol=1e-6)
    assert floats.usage.prompt_tokens > 0


def test_vectors_are_unit_length_and_dimensions_truncate(client: Any) -> None:
    full = client.embeddings.create(model="tiny-bert", input="the quick brown fox", encoding_format="float")
    assert np.isclose(np.linalg.norm(full.data[0].embedding), 1.0, atol=1e-5)
    short = client.embeddings.create(
        model="tiny-bert", input="the quick brown fox", dimensions=8, encoding_format="float"
    )
    assert len(short.data[0].embedding) == 8
    assert np.isclose(np.linalg.norm(short.data[0].embedding), 1.0, atol=1e-5)


def test_minilm_puts_similar_sentences_closer_than_unrelated_ones(client: Any) -> None:
    texts = [
        "A man is playing a guitar.",
        "Someone plays an acoustic guitar on stage.",
        "The stock market fell sharply on Monday.",
    ]
    data = client.embeddings.create(model="minilm", input=texts, encoding_format="float").data
    v = np.array([d.embedding for d in data])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert v[1] @ v[0] > v[1] @ v[2] + 0.2


def test_minilm_pooling_comes_from_its_sentence_transformers_config(handlers: dict[str, Any]) -> None:
    """Mean pooling is detected from the packaged sentence-transformers config."""
    assert handlers["minilm"].pooling == "mean"
