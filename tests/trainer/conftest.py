"""Fixtures for the trainer tests: a tiny Llama built on the spot and a small memorisable dataset."""

from __future__ import annotations

import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

FACTS = [
    ("What colour is the sky?", "The sky is blue."),
    ("What do cows drink?", "Cows drink water."),
    ("What is two plus two?", "Two plus two is four."),
    ("Where do fish live?", "Fish live in water."),
]


@pytest.fixture
def chat_dataset(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "train.jsonl"
    lines = [
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
        for q, a in FACTS
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
