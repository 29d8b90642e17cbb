"""Function calling on the chat route: the request's tools against what the model can do, the
history's tool turns for the chat template, and calls in the OpenAI shape (whole or streamed).

The parsing and the grammar live in :mod:`modelyard.runtime.toolcalls`; this module is the
OpenAI side of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelyard.api import openai
from modelyard.runtime import errors, served, toolcalls


def plan(
    tools: Sequence[Any] | None, choice: Any, parallel: bool | None, model: served.ServedModel
) -> toolcalls.Plan | None:
    """The request's tool plan: the tools checked first (a 400 naming the bad field), then a
    400 naming ``tools`` when the model cannot call tools."""
    fmt = getattr(model.handler, "tool_format", None)
    checked = toolcalls.plan(tools, choice, parallel, fmt or "hermes")
    if checked is not None and fmt is None:
        why = getattr(model.handler, "tools_unsupported", None) or "its handler does not serve tools"
        raise errors.UnsupportedError(
            f"tools: the model {model.name!r} cannot call tools: {why}", param="tools"
        )
    return checked


def history(message: openai.ChatMessage, i: int) -> dict[str, Any]:
    """The tool fields of one history message, as chat templates read them: an assistant's
    calls with their arguments as objects, a tool message's ``tool_call_id``."""
    out: dict[str, Any] = {}
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if not message.tool_calls:
        return out
    if message.role != "assistant":
        raise errors.BadRequestError(
            f"messages[{i}].tool_calls: only assistant messages carry tool calls",
            param=f"messages[{i}].tool_calls",
        )
    calls = []
    for j, call in enumerate(message.tool_calls):
        where = f"messages[{i}].tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise errors.BadRequestError(f"{where}.function: a name is required", param=f"{where}.function")
        arguments = fn.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise errors.BadRequestError(
                f"{where}.function.arguments: must be a JSON object", param=f"{where}.function.arguments"
            )
        calls.append(
            {
                "id": call.get("id"),
                "type": "function",
                "function": {"name": fn["name"], "arguments": parsed},
            }
        )
    out["tool_calls"] = calls
    return out


def as_openai(call: toolcalls.Call) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def calls_of(p: toolcalls.Plan | None, text: str) -> tuple[str | None, list[toolcalls.Call]]:
    """(content, calls) of a whole answer: calls only when the plan parses them."""
    if p is None or not p.parses:
        return text, []
    content, calls = toolcalls.parse(p.format, text, p.tools)
    return content, calls if p.parallel else calls[:1]


def deltas(calls: Sequence[toolcalls.Call]) -> list[list[dict[str, Any]]]:
    """Each call as two stream deltas, as OpenAI sends them: its id, type and name with empty
    arguments, then the arguments."""
    out: list[list[dict[str, Any]]] = []
    for index, call in enumerate(calls):
        out.append(
            [
                {
                    "index": index,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
            ]
        )
        out.append([{"index": index, "function": {"arguments": call.arguments}}])
    return out
