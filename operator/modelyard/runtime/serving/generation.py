"""Running a text generation for a request: parameters, worker thread, cancellation, streaming.

Generation runs on the server's thread pool, inside the model's admission slot. A
``threading.Event`` travels with it; it is set when the client disconnects (a failed write,
a closing transport, or the request task being cancelled), and the handler checks it after
every token. Streaming sends nothing until the first token (or an error) exists, so a bad
request still gets a JSON 400 rather than a broken event stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from modelyard.api import openai
from modelyard.runtime import errors, invoke, protocols, sampling, served
from modelyard.runtime.serving import http, keys

_POLL = 0.25


def params(
    req: openai.ChatCompletionRequest | openai.CompletionRequest,
    model: served.ServedModel,
    response_format: dict[str, Any] | None = None,
) -> sampling.SamplingParams:
    return sampling.from_request(req, model.defaults, response_format)


def _call(
    method: Callable[..., Any], first: Any, p: sampling.SamplingParams, **extra: Any
) -> Callable[[], protocols.ChatGeneration]:
    """The handler call, its sampling keywords checked now (a 400 before any work)."""
    return functools.partial(invoke.call, method, first, **extra, **sampling.handler_kwargs(method, p))


def _method(model: served.ServedModel, name: str) -> Callable[..., Any]:
    method = getattr(model.handler, name, None)
    if not callable(method):
        endpoint = "chat completions" if name == "generate" else "completions"
        raise errors.UnsupportedError(f"the model {model.name!r} does not serve {endpoint}", param="model")
    return method  # type: ignore[no-any-return]


def _record(app: web.Application, model: served.ServedModel, gen: protocols.ChatGeneration) -> None:
    m = app[keys.METRICS]
    m.prompt_tokens.labels(model.name).inc(gen.prompt_tokens)
    m.generated_tokens.labels(model.name).inc(gen.completion_tokens)
    if gen.finish_reason == "cancelled":
        m.cancelled.labels(model.name).inc()


async def _finish(future: asyncio.Future[Any], cancel: threading.Event) -> None:
    """Stop the generation and wait for its thread, even while this task is being cancelled."""
    cancel.set()
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            continue


async def run(
    request: web.Request,
    model: served.ServedModel,
    method_name: str,
    first: Any,
    p: sampling.SamplingParams,
    template: Mapping[str, Any] | None = None,
) -> protocols.ChatGeneration:
    """A whole generation; the client going away cancels it. ``template``: the chat-template
    keywords the request set (:func:`modelyard.runtime.serving.chat.template_options`)."""
    method = _method(model, method_name)
    app = request.app
    cancel = threading.Event()
    call = _call(method, first, p, cancel_event=cancel, **(template or {}))
    loop = asyncio.get_running_loop()
    async with model.limiter.slot():
        future = loop.run_in_executor(app[keys.EXECUTOR], call)
        try:
            while not future.done():
                await asyncio.wait([future], timeout=_POLL)
                if http.client_gone(request):
                    cancel.set()
        except BaseException:
            await _finish(future, cancel)
            if future.done() and not future.cancelled() and future.exception() is None:
                _record(app, model, _cancelled(future.result()))
            raise
        gen = _result(future, p)
    if cancel.is_set():
        gen = _cancelled(gen)
    _record(app, model, gen)
    return gen


def _result(future: asyncio.Future[Any], p: sampling.SamplingParams) -> protocols.ChatGeneration:
    """The generation; a handler's error about ``max_tokens`` names the field the client set
    (``max_completion_tokens`` sets the same budget)."""
    try:
        gen: protocols.ChatGeneration = future.result()
    except errors.BadRequestError as exc:
        budget = p.set_by.get("max_tokens", "max_tokens")
        if exc.param == "max_tokens" and budget != "max_tokens":
            exc.param = budget
            exc.message = exc.message.replace("max_tokens", budget)
        raise
    return gen


def _cancelled(gen: protocols.ChatGeneration) -> protocols.ChatGeneration:
    return dataclasses.replace(gen, finish_reason="cancelled")


Events = dict[str, Any] | list[dict[str, Any]] | None
"""What a :class:`Chunks` callback returns: one event, several, or none."""


@dataclasses.dataclass
class Chunks:
    """How one endpoint shapes its stream events. ``content`` gets each new piece of text
    (it may hold it back: tool calls), ``end`` the whole generation. ``encode`` writes one
    event (``data: ...`` by default) and ``done`` says whether ``data: [DONE]`` ends the
    stream (the Responses API sends none)."""

    start: Callable[[], Events]
    content: Callable[[str], Events]
    end: Callable[[protocols.ChatGeneration], Events]
    usage: Callable[[openai.Usage], Events]
    encode: Callable[[dict[str, Any]], bytes] = http.sse
    done: bool = True

    async def write(self, response: web.StreamResponse, events: Events) -> None:
        for event in [events] if isinstance(events, dict) else events or []:
            await response.write(self.encode(event))


async def stream(
    request: web.Request,
    model: served.ServedModel,
    method_name: str,
    first: Any,
    p: sampling.SamplingParams,
    chunks: Chunks,
    include_usage: bool,
    template: Mapping[str, Any] | None = None,
) -> web.StreamResponse:
    method = _method(model, method_name)
    app = request.app
    metrics = app[keys.METRICS]
    loop = asyncio.get_running_loop()
    cancel = threading.Event()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    response = http.stream_response()
    began = time.monotonic()
    call = _call(
        method, first, p, cancel_event=cancel, on_token=app[keys.TOKENS].sender(queue), **(template or {})
    )
    async with model.limiter.slot():
        future = loop.run_in_executor(app[keys.EXECUTOR], call)
        future.add_done_callback(lambda _: queue.put_nowait(None))
        prepared = False
        ended = False
        try:
            while not ended:
                try:
                    first = queue.get_nowait() if queue.qsize() else await _next(queue)
                except TimeoutError:
                    if http.client_gone(request):
                        raise ConnectionResetError("client went away") from None
                    continue
                if first is None:
                    break
                # the first piece goes out alone (time to first token); after it, the pieces
                # queued while the loop was busy (many streams share it) go out as one chunk
                rest, ended = _drain(queue) if prepared else ("", False)
                item = first + rest
                if not prepared:
                    prepared = True
                    metrics.ttft.labels(model.name).observe(time.monotonic() - began)
                    await response.prepare(request)
                    await chunks.write(response, chunks.start())
                if http.client_gone(request):
                    raise ConnectionResetError("client went away")
                await chunks.write(response, chunks.content(item))
            gen = _result(future, p)  # a handler error before any token: JSON error
        except BaseException as exc:
            await _finish(future, cancel)
            if future.done() and not future.cancelled() and future.exception() is None:
                _record(app, model, _cancelled(future.result()))
            if isinstance(exc, asyncio.CancelledError) or not (prepared or http.client_gone(request)):
                raise
            if prepared and not isinstance(exc, ConnectionResetError) and not http.client_gone(request):
                await _error_event(response, exc)
            return response
    _record(app, model, gen)
    try:
        if not prepared:
            await response.prepare(request)
            await chunks.write(response, chunks.start())
        if gen.text and not invoke.accepts(method, "on_token"):
            # a handler that cannot stream: its whole answer is one chunk
            await chunks.write(response, chunks.content(gen.text))
        await chunks.write(response, chunks.end(gen))
        if include_usage:
            usage = openai.Usage(
                prompt_tokens=gen.prompt_tokens,
                completion_tokens=gen.completion_tokens,
                total_tokens=gen.prompt_tokens + gen.completion_tokens,
            )
            await chunks.write(response, chunks.usage(usage))
        if chunks.done:
            await response.write(http.sse("[DONE]"))
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


async def _next(queue: asyncio.Queue[str | None]) -> str | None:
    return await asyncio.wait_for(queue.get(), _POLL)


def _drain(queue: asyncio.Queue[str | None]) -> tuple[str, bool]:
    """Everything queued now, as one text, and whether the end marker came."""
    parts: list[str] = []
    while not queue.empty():
        item = queue.get_nowait()
        if item is None:
            return "".join(parts), True
        parts.append(item)
    return "".join(parts), False


async def _error_event(response: web.StreamResponse, exc: BaseException) -> None:
    """A failure after the stream began: one OpenAI error event, then the end of the stream."""
    status = exc.status if isinstance(exc, errors.RuntimeServingError) else 500
    message = str(exc) if isinstance(exc, errors.RuntimeServingError) else f"generation failed: {exc}"
    try:
        await response.write(http.sse(openai.error_body(status, message)))
        await response.write(http.sse("[DONE]"))
        await response.write_eof()
    except ConnectionResetError:
        pass
