"""``POST /v1/responses``: the Responses API over the chat generation.

The request becomes a chat request (``instructions`` a system message; ``input`` a string or
items: messages with text parts, ``function_call`` and ``function_call_output``; function
``tools`` and ``tool_choice``; ``text.format`` as ``response_format``; ``max_output_tokens``)
and runs as :mod:`chat` runs it. The answer's text becomes a ``message`` item and its calls
``function_call`` items. Streaming sends the Responses events (``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``... ``response.completed``), each as ``event:`` and ``data:``.

Nothing is stored: ``store`` is accepted and ignored, and ``previous_response_id`` is a 400
(send the whole conversation in ``input``). Reasoning items in the input are skipped; other
item types and non-function tools are a 400 naming them.

(A little over 300 lines: the request's translation, the response's shape and its event
sequence are one protocol, read together.)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import pydantic
from aiohttp import web

from modelyard.api import openai
from modelyard.runtime import errors, protocols, toolcalls
from modelyard.runtime.serving import chat, generation, http, tools

_TEXT_PARTS = ("input_text", "output_text", "text")
_SAMPLING_EXTRAS = ("seed", "stop", "ignore_eos", "min_tokens")
"""Chat sampling fields a Responses request may carry too (``extra_body``)."""


def _bad(param: str, message: str) -> errors.BadRequestError:
    return errors.BadRequestError(f"{param}: {message}", param=param)


def _text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise _bad(where, "a string or a list of text parts is required")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in _TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else None
            raise _bad(
                f"{where}[{j}].type", f"{kind!r} is not served; only text parts ({', '.join(_TEXT_PARTS)})"
            )
        texts.append(str(part.get("text") or ""))
    return "\n".join(texts)


def _messages(req: openai.ResponsesRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.instructions:
        out.append({"role": "system", "content": req.instructions})
    if isinstance(req.input, str):
        return [*out, {"role": "user", "content": req.input}]
    for i, item in enumerate(req.input):
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise _bad(f"input[{i}].role", "must be user, assistant, system or developer")
            out.append({"role": role, "content": _text(item.get("content"), f"input[{i}].content")})
        elif kind == "function_call":
            if not isinstance(item.get("name"), str):
                raise _bad(f"input[{i}].name", "a function name is required")
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item["name"], "arguments": item.get("arguments") or "{}"},
            }
            last = out[-1] if out else None
            if (
                last is not None
                and last["role"] == "assistant"
                and (last.get("tool_calls") or not last["content"])
            ):
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = _text(item.get("output"), f"input[{i}].output")
            out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output})
        elif kind != "reasoning":
            raise _bad(
                f"input[{i}].type",
                f"{kind!r} is not served; use message, function_call or function_call_output",
            )
    if not out:
        raise _bad("input", "at least one message is required")
    return out


def _tools(req: openai.ResponsesRequest) -> tuple[list[dict[str, Any]] | None, Any]:
    out = []
    for i, tool in enumerate(req.tools or []):
        if tool.get("type") != "function":
            raise _bad(f"tools[{i}].type", f"{tool.get('type')!r} is not served; only 'function' tools")
        fn = {k: tool[k] for k in ("name", "description", "parameters") if tool.get(k) is not None}
        out.append({"type": "function", "function": fn})
    choice = req.tool_choice
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            raise _bad(
                "tool_choice", 'must be "auto", "none", "required" or {"type": "function", "name": ...}'
            )
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    return out or None, choice


def _response_format(req: openai.ResponsesRequest) -> dict[str, Any] | None:
    text = (req.model_extra or {}).get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_schema":
        spec = {k: fmt[k] for k in ("name", "schema", "strict") if k in fmt}
        return {"type": "json_schema", "json_schema": spec}
    return {"type": fmt.get("type")}


def _chat_request(req: openai.ResponsesRequest) -> openai.ChatCompletionRequest:
    chat_tools, choice = _tools(req)
    body: dict[str, Any] = {
        "model": req.model,
        "messages": _messages(req),
        "tools": chat_tools,
        "tool_choice": choice,
        "parallel_tool_calls": req.parallel_tool_calls,
        "max_tokens": req.max_output_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "response_format": _response_format(req),
    }
    extra = req.model_extra or {}
    body.update({k: extra[k] for k in _SAMPLING_EXTRAS if k in extra})
    try:
        return openai.ChatCompletionRequest.model_validate({k: v for k, v in body.items() if v is not None})
    except pydantic.ValidationError as exc:  # a field this module built from the request's
        raise _renamed(http.validation_error(exc)) from None


def _renamed(exc: errors.RuntimeServingError) -> errors.RuntimeServingError:
    """A chat error's field as the Responses request names it (a message's index counts the
    system message ``instructions`` makes)."""
    param = exc.param or ""
    new = param.replace(".function.", ".") if param.startswith("tools[") else param
    new = new.replace("response_format.json_schema", "text.format").replace("response_format", "text.format")
    new = new.replace("max_tokens", "max_output_tokens")
    new = "input" + new.removeprefix("messages") if new.startswith("messages") else new
    if new != param:
        exc.message, exc.param = exc.message.replace(param, new), new
    return exc


class _Shape:
    """One response's objects and events."""

    def __init__(self, req: openai.ResponsesRequest, model: str) -> None:
        self.req, self.model = req, model
        self.id, self.created = f"resp_{uuid.uuid4().hex}", int(time.time())
        self.message_id = f"msg_{uuid.uuid4().hex}"
        self.sequence = 0

    def response(self, output: list[dict[str, Any]], gen: protocols.ChatGeneration | None) -> dict[str, Any]:
        status = (
            "in_progress" if gen is None else ("incomplete" if gen.finish_reason == "length" else "completed")
        )
        req = self.req
        text = (req.model_extra or {}).get("text")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
            "instructions": req.instructions,
            "tools": req.tools or [],
            "tool_choice": req.tool_choice or "auto",
            "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_output_tokens": req.max_output_tokens,
            "previous_response_id": None,
            "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
            "truncation": "disabled",
            "metadata": req.metadata or {},
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "usage": None if gen is None else _usage(gen),
        }

    def message(self, text: str, status: str = "completed") -> dict[str, Any]:
        content = [] if status == "in_progress" else [self.part(text)]
        return {
            "type": "message",
            "id": self.message_id,
            "status": status,
            "role": "assistant",
            "content": content,
        }

    @staticmethod
    def part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    @staticmethod
    def call(call: toolcalls.Call, arguments: str | None = None) -> dict[str, Any]:
        return {
            "type": "function_call",
            "id": f"fc_{call.id.removeprefix('call_')}",
            "call_id": call.id,
            "name": call.name,
            "arguments": call.arguments if arguments is None else arguments,
            "status": "completed" if arguments is None else "in_progress",
        }

    def output(self, text: str | None, calls: Sequence[toolcalls.Call]) -> list[dict[str, Any]]:
        items = [self.message(text)] if text else []
        return items + [self.call(c) for c in calls]

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.sequence += 1
        return {"type": kind, "sequence_number": self.sequence - 1, **fields}


def _usage(gen: protocols.ChatGeneration) -> dict[str, Any]:
    return {
        "input_tokens": gen.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": gen.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\n".encode() + http.sse(event)


class _Stream:
    """The Responses events of one streamed answer, fed as :class:`generation.Chunks`."""

    def __init__(self, shape: _Shape, plan: toolcalls.Plan | None) -> None:
        self.shape = shape
        self.splitter = toolcalls.StreamSplitter(plan) if plan is not None and plan.parses else None
        self.text = ""
        self.opened = False

    def start(self) -> list[dict[str, Any]]:
        opening = self.shape.response([], None)
        return [
            self.shape.event("response.created", response=opening),
            self.shape.event("response.in_progress", response=opening),
        ]

    def content(self, piece: str) -> list[dict[str, Any]]:
        piece = self.splitter.feed(piece) if self.splitter is not None else piece
        if not piece:
            return []
        ev = self.shape.event
        events = []
        if not self.opened:
            self.opened = True
            events += [
                ev("response.output_item.added", output_index=0, item=self.shape.message("", "in_progress")),
                ev("response.content_part.added", output_index=0, content_index=0,
                   item_id=self.shape.message_id, part=self.shape.part("")),
            ]  # fmt: skip
        self.text += piece
        ids = {"output_index": 0, "content_index": 0, "item_id": self.shape.message_id}
        return [*events, ev("response.output_text.delta", delta=piece, logprobs=[], **ids)]

    def end(self, gen: protocols.ChatGeneration) -> list[dict[str, Any]]:
        rest, calls = self.splitter.finish() if self.splitter is not None else ("", [])
        events = self.content_rest(rest)
        ev, shape = self.shape.event, self.shape
        if self.opened:
            ids = {"output_index": 0, "content_index": 0, "item_id": shape.message_id}
            events += [
                ev("response.output_text.done", text=self.text, logprobs=[], **ids),
                ev("response.content_part.done", part=shape.part(self.text), **ids),
                ev("response.output_item.done", output_index=0, item=shape.message(self.text)),
            ]
        for n, call in enumerate(calls, start=1 if self.opened else 0):
            ids = {"output_index": n, "item_id": shape.call(call)["id"]}
            events += [
                ev("response.output_item.added", output_index=n, item=shape.call(call, "")),
                ev("response.function_call_arguments.delta", delta=call.arguments, **ids),
                ev("response.function_call_arguments.done", arguments=call.arguments, name=call.name, **ids),
                ev("response.output_item.done", output_index=n, item=shape.call(call)),
            ]
        final = shape.response(shape.output(self.text, calls), gen)
        done = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return [*events, ev(done, response=final)]

    def content_rest(self, rest: str) -> list[dict[str, Any]]:
        splitter, self.splitter = self.splitter, None
        try:
            return self.content(rest) if rest else []
        finally:
            self.splitter = splitter


async def create(request: web.Request) -> web.StreamResponse:
    req = http.parse(openai.ResponsesRequest, await http.read_json(request))
    if req.previous_response_id:
        raise _bad(
            "previous_response_id",
            "this server stores no responses; send the whole conversation in input (store is ignored)",
        )
    model = http.lookup(request, req.model, "chat")
    try:
        prep = chat.prepare(_chat_request(req), model)
    except errors.RuntimeServingError as exc:
        raise _renamed(exc) from None
    shape = _Shape(req, model.name)
    try:
        if req.stream:
            s = _Stream(shape, prep.plan)
            chunks = generation.Chunks(
                start=lambda _n: s.start(),
                content=lambda text, _index, _logprobs: s.content(text),
                end=s.end,
                usage=lambda _: None,
                encode=_sse,
                done=False,
            )
            return await generation.stream(
                request, model, "generate", prep.messages, prep.params, chunks, False, prep.template
            )
        gens = await generation.run(request, model, "generate", prep.messages, prep.params, prep.template)
        gen = gens[0]  # a Responses request has one answer (n is 1)
    except errors.RuntimeServingError as exc:
        raise _renamed(exc) from None
    text, calls = tools.calls_of(prep.plan, gen.text)
    return http.json_response(shape.response(shape.output(text, calls), gen))
