"""Datasets are validated before any model loads; a bad record is reported with its line number."""

from __future__ import annotations

import json
import pathlib

import pytest

from modelyard.trainer import dataset, errors


def _lines(*records: object) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r) for r in records]


def test_auto_detects_each_format() -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert dataset.parse_lines(_lines(chat))[0] == "chat"
    assert dataset.parse_lines(_lines({"prompt": "a", "completion": "b"}))[0] == "instruction"
    assert dataset.parse_lines(_lines({"text": "hello"}))[0] == "text"


def test_blank_lines_are_skipped_but_count_for_line_numbers() -> None:
    with pytest.raises(errors.DatasetError, match=r"^dataset line 4: not valid JSON") as caught:
        dataset.parse_lines(_lines({"text": "a"}, "", {"text": "b"}, "{broken"))
    assert caught.value.line == 4


def test_a_record_of_another_format_names_its_line() -> None:
    with pytest.raises(errors.DatasetError, match="dataset line 2: text records need"):
        dataset.parse_lines(_lines({"text": "a"}, {"prompt": "p", "completion": "c"}))


def test_chat_messages_are_checked_one_by_one() -> None:
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]}
    with pytest.raises(errors.DatasetError, match=r"dataset line 1: messages\[1\]\.role must be one of"):
        dataset.parse_lines(_lines(bad), "chat")


def test_an_explicit_format_is_held_from_the_first_line() -> None:
    with pytest.raises(
        errors.DatasetError, match="dataset line 1: instruction records need a string 'prompt'"
    ):
        dataset.parse_lines(_lines({"text": "a"}), "instruction")


def test_undetectable_and_non_object_records_fail() -> None:
    with pytest.raises(errors.DatasetError, match="dataset line 1: cannot detect the format"):
        dataset.parse_lines(_lines({"question": "a"}))
    with pytest.raises(errors.DatasetError, match="dataset line 1: each line must be a JSON object"):
        dataset.parse_lines(_lines("[1, 2]"))


def test_an_empty_or_missing_file_fails(tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(errors.DatasetError, match="dataset: no records"):
        dataset.load(empty)
    with pytest.raises(errors.DatasetError, match="cannot read"):
        dataset.load(tmp_path / "missing.jsonl")


def test_render_uses_the_chat_template_for_instructions() -> None:
    def template(messages: list[dict[str, str]]) -> str:
        return "|".join(f"{m['role']}={m['content']}" for m in messages)

    text = dataset.render({"prompt": "p", "completion": "c"}, "instruction", template, "</s>")
    assert text == "user=p|assistant=c</s>"
    assert dataset.render({"text": "t"}, "text", template, "</s>") == "t</s>"
