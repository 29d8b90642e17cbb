"""JSONL training data: read, validate every record up front, render records to text.

A bad record fails the job before any model is loaded, with its 1-based line number, so a
person can fix the file rather than read a stack trace. Formats: ``chat`` (``messages``),
``instruction`` (``prompt``/``completion``), ``text`` (``text``); ``auto`` takes the format
of the first record and then holds every other record to it.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

from modelyard.trainer import errors

FORMATS = ("chat", "instruction", "text")
ROLES = ("system", "user", "assistant", "tool")
Record = dict[str, Any]


def detect(record: Record) -> str | None:
    """The format a record is in, or None when its keys match none."""
    if "messages" in record:
        return "chat"
    if "prompt" in record and "completion" in record:
        return "instruction"
    if "text" in record:
        return "text"
    return None


def _check(record: Record, fmt: str) -> str | None:
    """What is wrong with ``record`` as ``fmt``, or None."""
    if fmt == "chat":
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty list"
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                return f"messages[{i}] must be an object"
            if message.get("role") not in ROLES:
                return f"messages[{i}].role must be one of {', '.join(ROLES)}"
            if not isinstance(message.get("content"), str):
                return f"messages[{i}].content must be a string"
        return None
    if fmt == "instruction":
        for key in ("prompt", "completion"):
            if not isinstance(record.get(key), str):
                return f"instruction records need a string {key!r}"
        return None
    text = record.get("text")
    if not isinstance(text, str) or not text:
        return "text records need a non-empty string 'text'"
    return None


def parse_lines(lines: list[str], fmt: str = "auto") -> tuple[str, list[Record]]:
    """(format, records) from JSONL lines; raises DatasetError naming the first bad line."""
    if fmt != "auto" and fmt not in FORMATS:
        raise errors.DatasetError(f"format {fmt!r} is not one of auto, {', '.join(FORMATS)}")
    records: list[Record] = []
    resolved = None if fmt == "auto" else fmt
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise errors.DatasetError(f"not valid JSON ({exc.msg} at column {exc.colno})", number) from exc
        if not isinstance(record, dict):
            raise errors.DatasetError("each line must be a JSON object", number)
        if resolved is None:
            resolved = detect(record)
            if resolved is None:
                raise errors.DatasetError(
                    "cannot detect the format: expected 'messages', 'prompt'+'completion' or 'text'", number
                )
        problem = _check(record, resolved)
        if problem:
            raise errors.DatasetError(f"{problem} (format {resolved})", number)
        records.append(record)
    if not records or resolved is None:
        raise errors.DatasetError("no records")
    return resolved, records


def load(path: pathlib.Path, fmt: str = "auto") -> tuple[str, list[Record]]:
    """Read and validate a JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.DatasetError(f"cannot read {path}: {exc}") from exc
    return parse_lines(text.splitlines(), fmt)


Template = Callable[[list[dict[str, str]]], str]


def render(record: Record, fmt: str, template: Template | None, eos: str) -> str:
    """One training text: chat records through the model's chat template when it has one."""
    if fmt == "text":
        return str(record["text"]) + eos
    if fmt == "instruction":
        messages = [
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": record["completion"]},
        ]
    else:
        messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
    if template is not None:
        return template(messages) + eos
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + eos
