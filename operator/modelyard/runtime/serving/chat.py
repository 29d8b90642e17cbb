"""``/v1/chat/completions`` and ``/v1/completions``: thin routes over :mod:`generation`.

A chat request may set vLLM's ``add_generation_prompt: false`` and ``continue_final_message:
true`` to continue its last (assistant) message instead of opening a new turn: the gateway
resumes a broken stream so (docs/gateway.md#stream-resumption).

Structured outputs (``response_format``) go only to handlers with
``supports_structured_outputs``; a json_schema is checked here (``jsonschema``: a 400 naming
``response_format.json_schema.schema``) and enforced by the handler (the built-in one
decodes under the schema's grammar, :mod:`modelyard.runtime.handlers.structured`).

``n`` choices and ``logprobs`` go to handlers that support them (``--max-n`` bounds ``n``,
:func:`modelyard.runtime.serving.generation.params`); each choice carries its ``index`` and its
logprobs in the shape of its endpoint (:mod:`~modelyard.runtime.serving.choices`), streamed or not.

``tools`` go to handlers with a ``tool_format`` (:mod:`tools`, :mod:`modelyard.runtime.toolcalls`):
the template renders them, calls in the answer become ``message.tool_calls`` (streamed as
``delta.tool_calls``) and ``finish_reason`` ``tool_calls``. :func:`prepare` is shared with the
Responses API (:mod:`responses`).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

import jsonschema
from aiohttp import web

from modelyard.api import openai
from modelyard.runtime import errors, invoke, protocols, sampling, served, toolcalls
from modelyard.runtime.serving import choices, generation, http, tools


def _messages(req: openai.ChatCompletionRequest, model: served.ServedModel) -> list[dict[str, Any]]:
    vision = "vision" in (getattr(model.handler, "capabilities", None) or [])
    out: list[dict[str, Any]] = []
    for i, message in enumerate(req.messages):
        content = message.content
        if isinstance(content, list):
            texts = [str(p.get("text", "")) for p in content if p.get("type") == "text"]
            if len(texts) != len(content) and not vision:
                raise errors.UnsupportedError(
                    f"messages[{i}].content: the model {model.name!r} reads text parts only",
                    param=f"messages[{i}].content",
                )
            content = content if vision and len(texts) != len(content) else "\n".join(texts)
        # "developer" is the newer name of "system"; chat templates know only the latter
        role = "system" if message.role == "developer" else message.role
        item: dict[str, Any] = {"role": role, "content": content or ""}
        if message.name:
            item["name"] = message.name
        item.update(tools.history(message, i))
        out.append(item)
    return out


def template_options(req: openai.ChatCompletionRequest, model: served.ServedModel) -> dict[str, Any]:
    """vLLM's chat-template switches as handler keywords: empty for the usual chat (so a
    handler that never heard of them is called as before); a 400 naming the field when they
    contradict each other or the handler cannot take them."""
    if req.continue_final_message and req.add_generation_prompt:
        raise errors.BadRequestError(
            "continue_final_message: cannot be true while add_generation_prompt is true "
            "(send add_generation_prompt: false)",
            param="continue_final_message",
        )
    if req.continue_final_message and req.messages[-1].role != "assistant":
        raise errors.BadRequestError(
            "continue_final_message: the last message must be an assistant message to continue",
            param="messages",
        )
    wanted: dict[str, Any] = {}
    if not req.add_generation_prompt:
        wanted["add_generation_prompt"] = False
    if req.continue_final_message:
        wanted["continue_final_message"] = True
    method = getattr(model.handler, "generate", None)
    for name in wanted:
        if callable(method) and not invoke.accepts(method, name):
            raise errors.UnsupportedError(
                f"{name}: the model {model.name!r}'s handler does not accept {name!r}", param=name
            )
    return wanted


def _response_format(req: openai.ChatCompletionRequest, model: served.ServedModel) -> dict[str, Any] | None:
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    if not model.supports_structured_outputs:
        raise errors.UnsupportedError(
            f"the model {model.name!r} does not support structured outputs (response_format {fmt.type})",
            param="response_format",
        )
    body = fmt.model_dump(exclude_none=True)
    if fmt.type == "json_schema":
        spec = fmt.json_schema or {}
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise errors.BadRequestError(
                "response_format.json_schema.schema: a JSON schema object is required",
                param="response_format.json_schema.schema",
            )
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise errors.BadRequestError(
                f"response_format.json_schema.schema: not a valid JSON schema: {exc.message}",
                param="response_format.json_schema.schema",
            ) from exc
    return body


def _schema_hint(messages: list[dict[str, Any]], fmt: dict[str, Any]) -> list[dict[str, Any]]:
    if fmt.get("type") == "json_schema":
        schema = json.dumps(fmt["json_schema"]["schema"])
        hint = f"Reply with one JSON object that follows this JSON schema: {schema}"
    else:
        hint = "Reply with one JSON object."
    return [{"role": "system", "content": hint}, *messages]


def _finish_reason(gen: protocols.ChatGeneration, calls: bool = False) -> str:
    reason = choices.finish_reason(gen)
    return "tool_calls" if calls and reason != "length" else reason


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A chat request made ready to generate: the handler's messages and keywords."""

    messages: list[dict[str, Any]]
    params: sampling.SamplingParams
    template: dict[str, Any]
    """Keywords of the handler's ``generate`` beyond sampling (chat-template switches, tools)."""
    plan: toolcalls.Plan | None


def prepare(req: openai.ChatCompletionRequest, model: served.ServedModel) -> Prepared:
    messages = _messages(req, model)
    fmt = _response_format(req, model)
    template = template_options(req, model)
    plan = tools.plan(req.tools, req.tool_choice, req.parallel_tool_calls, model)
    p = generation.params(req, model, fmt)
    if fmt is not None:
        if plan is not None and plan.enforced:
            raise errors.BadRequestError(
                "response_format: cannot be combined with tool_choice required or a named function "
                "(the answer is the call)",
                param="response_format",
            )
        messages = _schema_hint(messages, fmt)
    if plan is not None:
        if p.n > 1:
            raise errors.BadRequestError("n: must be 1 when tools are given", param="n")
        template["tools"] = list(plan.tools)
        if plan.enforced:
            p = dataclasses.replace(
                p, tool_call=plan.grammar(), set_by={**p.set_by, "tool_call": "tool_choice"}
            )
    return Prepared(messages, p, template, plan)


def _message(text: str | None, calls: list[toolcalls.Call]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [tools.as_openai(c) for c in calls]
    return message


async def chat_completions(request: web.Request) -> web.StreamResponse:
    req = http.parse(openai.ChatCompletionRequest, await http.read_json(request))
    model = http.lookup(request, req.model, "chat")
    prep = prepare(req, model)
    messages, p, template, plan = prep.messages, prep.params, prep.template, prep.plan
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(
        delta: dict[str, Any], finish: str | None, index: int = 0, logprobs: choices.Logprobs = None
    ) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": choices.chat(logprobs), "finish_reason": finish}
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model.name,
            "choices": [choice],
        }

    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        splitter = toolcalls.StreamSplitter(plan) if plan is not None and plan.parses else None

        def content(text: str, index: int, logprobs: choices.Logprobs) -> dict[str, Any] | None:
            if splitter is None:
                return chunk({"content": text}, None, index, logprobs)
            text = splitter.feed(text)  # tools: one choice (n is 1)
            return chunk({"content": text}, None, index, logprobs) if text else None

        def end(gen: protocols.ChatGeneration) -> list[dict[str, Any]]:
            rest, calls = splitter.finish() if splitter is not None else ("", [])
            events = [chunk({"content": rest}, None, gen.index)] if rest else []
            events += [chunk({"tool_calls": d}, None, gen.index) for d in tools.deltas(calls)]
            return [*events, chunk({}, _finish_reason(gen, bool(calls)), gen.index)]

        chunks = generation.Chunks(
            start=lambda n: [chunk({"role": "assistant", "content": ""}, None, i) for i in range(n)],
            content=content,
            end=end,
            usage=lambda u: {**chunk({}, None), "choices": [], "usage": u.model_dump()},
        )
        return await generation.stream(
            request, model, "generate", messages, p, chunks, include_usage, template
        )

    gens = await generation.run(request, model, "generate", messages, p, template)
    answers = [(gen, *tools.calls_of(plan, gen.text)) for gen in gens]
    return http.json_response(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model.name,
            "choices": [
                {
                    "index": gen.index,
                    "message": _message(text, calls),
                    "logprobs": choices.chat(gen.logprobs),
                    "finish_reason": _finish_reason(gen, bool(calls)),
                }
                for gen, text, calls in answers
            ],
            "usage": generation.usage(gens).model_dump(),
        }
    )


async def completions(request: web.Request) -> web.StreamResponse:
    """Legacy completions; with several prompts, choice ``i * n + j`` is prompt ``i``'s ``j``-th."""
    req = http.parse(openai.CompletionRequest, await http.read_json(request))
    model = http.lookup(request, req.model, "chat")
    p = generation.params(req, model)
    prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
    if not prompts:
        raise errors.BadRequestError("prompt: at least one prompt is required", param="prompt")
    if req.echo and p.logprobs is not None:
        raise errors.UnsupportedError(
            "logprobs: not with echo on this server (the prompt's own logprobs are not computed)",
            param="logprobs",
        )
    ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(
        text: str, finish: str | None, index: int = 0, logprobs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": model.name,
            "choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}],
        }

    if req.stream:
        if len(prompts) != 1:
            raise errors.BadRequestError("prompt: streaming takes exactly one prompt", param="prompt")
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        echo = prompts[0] if req.echo else None
        offsets: dict[int, int] = {}  # each choice's characters streamed so far (text_offset)

        def content(text: str, index: int, logprobs: choices.Logprobs) -> dict[str, Any]:
            at = offsets.get(index, 0)
            offsets[index] = choices.legacy_end(logprobs, at)
            return chunk(text, None, index, choices.legacy(logprobs, at))

        chunks = generation.Chunks(
            start=lambda n: [chunk(echo, None, i) for i in range(n)] if echo else [],
            content=content,
            end=lambda gen: chunk("", choices.finish_reason(gen), gen.index),
            usage=lambda u: {**chunk("", None), "choices": [], "usage": u.model_dump()},
        )
        return await generation.stream(request, model, "complete", prompts[0], p, chunks, include_usage)

    out: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = 0
    for number, prompt in enumerate(prompts):
        gens = await generation.run(request, model, "complete", prompt, p)
        for gen in gens:
            text = prompt + gen.text if req.echo else gen.text
            out.append(
                {
                    "index": number * p.n + gen.index,
                    "text": text,
                    "logprobs": choices.legacy(gen.logprobs),
                    "finish_reason": choices.finish_reason(gen),
                }
            )
        used = generation.usage(gens)
        prompt_tokens += used.prompt_tokens
        completion_tokens += used.completion_tokens
    return http.json_response(
        {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": model.name,
            "choices": out,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )
