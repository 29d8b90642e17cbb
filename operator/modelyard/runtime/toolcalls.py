"""Function calling for the built-in chat handler: the request's tools checked, the one call
a grammar forces, and the calls found in what the model wrote.

A model writes calls in the format its chat template taught it (``FORMATS``):

- ``hermes`` (Qwen2.5, Qwen3, Hermes and most templates since): any number of
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks; text around them is
  the message's content.
- ``llama3_json`` (Llama 3.1 to 3.3): the whole answer is ``{"name": ..., "parameters":
  {...}}`` (after ``<|python_tag|>`` when the template has one), several joined by ``;``.

The format is the entry's ``runtime.toolCallParser`` when it names one of these, else read from
the template (:func:`detect`); a template that never mentions ``tools`` cannot show the model
its tools, so such a model refuses ``tools`` (a 400 naming it). ``tool_choice`` ``required`` or
a named function is enforced: the answer is decoded under the grammar of exactly one call
(:meth:`Plan.call_schema` inside the format's wrapper), so it always parses. ``auto`` parses
what the model chose to write; text that does not parse as a call stays content.
JSON is read with :mod:`json` (``raw_decode`` for Llama's joined calls); only the
``<tool_call>`` tags are found by string search.

(A little over 300 lines: checking, forcing and finding calls share the formats and the plan.)
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema

from modelyard.runtime import errors

__all__ = ["FORMATS", "Call", "Plan", "StreamSplitter", "check_tools", "detect", "parse", "plan"]

FORMATS = ("hermes", "llama3_json")
HERMES_OPEN, HERMES_CLOSE = "<tool_call>", "</tool_call>"
PYTHON_TAG = "<|python_tag|>"
MAX_TOOLS = 128
_CHOICES = ("auto", "none", "required")


def detect(template: Any, configured: str | None) -> tuple[str | None, str]:
    """(format, "") for a chat template that renders tools, else (None, why not)."""
    if isinstance(template, Mapping):  # named templates: the tool one, if any
        template = template.get("tool_use") or template.get("default")
    text = template if isinstance(template, str) else ""
    if "tools" not in text:
        return None, "its chat template does not render tools"
    if configured:
        if configured in FORMATS:
            return configured, ""
        return None, (
            f"its toolCallParser {configured!r} is vLLM's; the transformers engine reads {', '.join(FORMATS)}"
        )
    if HERMES_OPEN in text:
        return "hermes", ""
    if PYTHON_TAG in text or '"parameters"' in text:
        return "llama3_json", ""
    return (
        None,
        f"its tool-call format is unknown; set the entry's runtime.toolCallParser ({', '.join(FORMATS)})",
    )


@dataclasses.dataclass(frozen=True)
class Call:
    name: str
    arguments: str
    """The arguments as a JSON object's text (as OpenAI sends them)."""
    id: str = dataclasses.field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one request's tools ask of the generation."""

    format: str
    tools: tuple[dict[str, Any], ...]
    """``{"type": "function", "function": {name, description, parameters}}``, for the template."""
    choice: str
    """``auto``, ``none``, ``required`` or ``named``."""
    named: str | None = None
    parallel: bool = True

    @property
    def enforced(self) -> bool:
        return self.choice in ("required", "named")

    @property
    def parses(self) -> bool:
        return self.choice != "none"

    def call_schema(self) -> dict[str, Any]:
        """The JSON schema of one call to the allowed function(s), in the format's key order."""
        key = "parameters" if self.format == "llama3_json" else "arguments"
        options = [
            {
                "type": "object",
                "properties": {
                    "name": {"enum": [t["function"]["name"]]},
                    key: t["function"].get("parameters") or {"type": "object", "properties": {}},
                },
                "required": ["name", key],
            }
            for t in self.tools
            if self.named is None or t["function"]["name"] == self.named
        ]
        return options[0] if len(options) == 1 else {"anyOf": options}

    def grammar(self) -> dict[str, Any]:
        """What the handler's grammar compiler takes: the format, the call's schema, the
        request field a grammar error names, and each allowed function's (field, parameters)."""
        allowed = [t for t in self.tools if self.named is None or t["function"]["name"] == self.named]
        return {
            "format": self.format,
            "schema": self.call_schema(),
            "param": self.param_of(self.named) if self.named else "tools",
            "parts": [
                (self.param_of(t["function"]["name"]), t["function"].get("parameters") or {}) for t in allowed
            ],
        }

    def param_of(self, name: str) -> str:
        """The request field of a function's parameters (named in a grammar's 400)."""
        for i, t in enumerate(self.tools):
            if t["function"]["name"] == name:
                return f"tools[{i}].function.parameters"
        return "tools"


def _bad(message: str, param: str) -> errors.BadRequestError:
    return errors.BadRequestError(f"{param}: {message}", param=param)


def check_tools(tools: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    """The request's tools in the chat shape; a 400 naming the first bad field."""
    if len(tools) > MAX_TOOLS:
        raise _bad(f"at most {MAX_TOOLS} tools", "tools")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, Mapping) else type(tool).__name__
            raise _bad(
                f"unsupported tool type {kind!r}; only 'function' tools are served", f"tools[{i}].type"
            )
        fn = tool.get("function")
        if not isinstance(fn, Mapping):
            raise _bad("a function object is required", f"tools[{i}].function")
        name = fn.get("name")
        if (
            not isinstance(name, str)
            or not name
            or len(name) > 64
            or not name.replace("-", "_").isidentifier()
        ):
            raise _bad(
                "a name of letters, digits, _ or - (at most 64) is required", f"tools[{i}].function.name"
            )
        if name in seen:
            raise _bad(f"the function {name!r} is given twice", f"tools[{i}].function.name")
        seen.add(name)
        params = fn.get("parameters")
        if params is not None:
            where = f"tools[{i}].function.parameters"
            if not isinstance(params, Mapping):
                raise _bad("a JSON schema object is required", where)
            params = dict(params)
            try:
                jsonschema.validators.validator_for(params).check_schema(params)
            except jsonschema.SchemaError as exc:
                raise _bad(f"not a valid JSON schema: {exc.message}", where) from exc
        function = {"name": name, "parameters": params}
        if isinstance(fn.get("description"), str):
            function["description"] = fn["description"]
        out.append({"type": "function", "function": {k: v for k, v in function.items() if v is not None}})
    return tuple(out)


def plan(tools: Sequence[Any] | None, choice: Any, parallel: bool | None, fmt: str) -> Plan | None:
    """The plan of a request with tools (None without); a 400 naming ``tool_choice`` when it
    is not one of the four forms or names a function that is not among the tools."""
    if not tools:
        if choice not in (None, "none", "auto"):
            raise _bad(f"{choice!r} needs tools, and the request has none", "tool_choice")
        return None
    checked = check_tools(tools)
    named = None
    if choice is None:
        kind = "auto"
    elif isinstance(choice, str) and choice in _CHOICES:
        kind = choice
    elif isinstance(choice, Mapping) and choice.get("type") == "function":
        fn = choice.get("function")
        named = fn.get("name") if isinstance(fn, Mapping) else None
        if named not in {t["function"]["name"] for t in checked}:
            raise _bad(
                f"the function {named!r} is not among the request's tools", "tool_choice.function.name"
            )
        kind = "named"
    else:
        raise _bad(
            'must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}',
            "tool_choice",
        )
    return Plan(fmt, checked, kind, named, True if parallel is None else bool(parallel))


def _call(value: Any, names: frozenset[str] | None) -> Call | None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    args = value.get("arguments", value.get("parameters"))
    if isinstance(args, str):  # some models write the arguments as a JSON string
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(args, dict) or (names is not None and value["name"] not in names):
        return None
    return Call(value["name"], json.dumps(args, ensure_ascii=False))


def _hermes(text: str, names: frozenset[str] | None) -> tuple[str, list[Call]]:
    calls: list[Call] = []
    content: list[str] = []
    at = 0
    while (start := text.find(HERMES_OPEN, at)) != -1:
        end = text.find(HERMES_CLOSE, start)
        body = text[start + len(HERMES_OPEN) : end if end != -1 else len(text)]
        stop = end + len(HERMES_CLOSE) if end != -1 else len(text)
        try:
            call = _call(json.loads(body), names)
        except ValueError:
            call = None
        content.append(text[at:start] if call is not None else text[at:stop])
        if call is not None:
            calls.append(call)
        at = stop
    content.append(text[at:])
    return "".join(content), calls


def _llama3(text: str, names: frozenset[str] | None) -> tuple[str, list[Call]]:
    body = text.strip().removeprefix(PYTHON_TAG).strip()
    decoder = json.JSONDecoder()
    calls: list[Call] = []
    at = 0
    while at < len(body):
        try:
            value, at = decoder.raw_decode(body, at)
        except ValueError:
            return text, []
        call = _call(value, names)
        if call is None:
            return text, []
        calls.append(call)
        while at < len(body) and body[at] in " \t\r\n;":
            at += 1
    return ("", calls) if calls else (text, [])


def parse(fmt: str, text: str, tools: Sequence[Mapping[str, Any]] = ()) -> tuple[str | None, list[Call]]:
    """(content, calls) of a generated text; content None when only calls were written. With
    ``tools``, a call to a function not among them stays text."""
    names = frozenset(t["function"]["name"] for t in tools) if tools else None
    content, calls = (_llama3 if fmt == "llama3_json" else _hermes)(text, names)
    if calls:
        return (content.strip() or None), calls
    return text, []


class StreamSplitter:
    """Streams content while it cannot be a call; holds back from where a call may begin and
    hands the held text to :func:`parse` at the end."""

    def __init__(self, p: Plan) -> None:
        self.plan = p
        self.text = ""
        self.sent = 0
        self.held = p.enforced

    def feed(self, piece: str) -> str:
        """The content that may go to the client now."""
        self.text += piece
        if self.held:
            return ""
        if self.plan.format == "llama3_json":
            rest = self.text[self.sent :].lstrip()
            if rest[:1] in ("{", "<"):
                self.held = True
                return ""
            if not rest:
                return ""
            out, self.sent = self.text[self.sent :], len(self.text)
            return out
        start = self.text.find(HERMES_OPEN, self.sent)
        if start != -1:
            out, self.sent, self.held = self.text[self.sent : start], start, True
            return out
        keep = next((k for k in range(len(HERMES_OPEN) - 1, 0, -1) if self.text.endswith(HERMES_OPEN[:k])), 0)
        end = max(self.sent, len(self.text) - keep)
        out, self.sent = self.text[self.sent : end], end
        return out

    def finish(self) -> tuple[str, list[Call]]:
        """The content still to send and the calls, once the generation has ended."""
        rest = self.text[self.sent :]
        self.sent = len(self.text)
        if not self.held:
            return rest, []
        content, calls = parse(self.plan.format, rest, self.plan.tools)
        if calls and not self.plan.parallel:
            calls = calls[:1]
        return content or "", calls
