"""Running a text generation for a request: parameters, worker thread, cancellation, streaming.

Generation runs on the server's thread pool, inside the model's admission slot. A
``threading.Event`` travels with it; it is set when the client disconnects (a failed write,
a closing transport, or the request task being cancelled), and the handler checks it after
every token. Streaming sends nothing until the first token (or an error) exists, so a bad
request still gets a JSON 400 rather than a broken event stream.

A request for ``n`` > 1 choices or for logprobs streams :class:`~modelyard.runtime.protocols.Piece`
values (each choice's text with its tokens' logprobs) rather than text; a handler answers such
a request with one generation per choice (a list), which :func:`run` always returns.
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
from modelyard.runtime.serving import http, keys, tokenpipe

_POLL = 0.25


def params(
    req: openai.ChatCompletionRequest | openai.CompletionRequest,
    model: served.ServedModel,
    response_format: dict[str, Any] | None = None,
) -> sampling.SamplingParams:
    """The request's sampling parameters; a 400 naming ``n`` or ``logprobs`` when the model
    cannot give what they ask."""
    p = sampling.from_request(req, model.defaults, response_format)
    if p.n > model.max_n:
        why = (
            f"at most {model.max_n} choices per request on this server (--max-n)"
            if model.max_n > 1
            else f"the model {model.name!r}'s handler generates one choice per request"
        )
        raise errors.BadRequestError(f"n: {why}; got {p.n}", param="n")
    if p.logprobs is not None and not model.supports_logprobs:
        raise errors.UnsupportedError(
            f"logprobs: the model {model.name!r}'s handler does not report logprobs", param="logprobs"
        )
    return p


Item = tokenpipe.Item
"""What a streaming handler sends: text, or a piece of one choice (with its logprobs)."""


def _call(
    model: served.ServedModel,
    method: Callable[..., Any],
    first: Any,
    p: sampling.SamplingParams,
    **extra: Any,
) -> Callable[[], protocols.ChatGeneration | list[protocols.ChatGeneration]]:
    """The handler call, its sampling keywords checked now (a 400 before any work); a live
    adapter's requests name its key."""
    if model.adapter is not None:
        extra["adapter"] = model.adapter
    return functools.partial(invoke.call, method, first, **extra, **sampling.handler_kwargs(method, p))


def _method(model: served.ServedModel, name: str) -> Callable[..., Any]:
    method = getattr(model.handler, name, None)
    if not callable(method):
        endpoint = "chat completions" if name == "generate" else "completions"
        raise errors.UnsupportedError(f"the model {model.name!r} does not serve {endpoint}", param="model")
    return method  # type: ignore[no-any-return]


def _record(app: web.Application, model: served.ServedModel, gens: list[protocols.ChatGeneration]) -> None:
    """Count a request's tokens: its prompt once, every choice's completion."""
    m = app[keys.METRICS]
    m.prompt_tokens.labels(model.name).inc(gens[0].prompt_tokens)
    m.generated_tokens.labels(model.name).inc(sum(g.completion_tokens for g in gens))
    if gens[0].finish_reason == "cancelled":
        m.cancelled.labels(model.name).inc()


def usage(gens: list[protocols.ChatGeneration]) -> openai.Usage:
    """A request's usage: the prompt counted once, the completions of every choice (as OpenAI)."""
    prompt = gens[0].prompt_tokens
    completion = sum(g.completion_tokens for g in gens)
    return openai.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


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
) -> list[protocols.ChatGeneration]:
    """A whole generation, one per choice; the client going away cancels it. ``template``: the chat-template
    keywords the request set (:func:`modelyard.runtime.serving.chat.template_options`)."""
    method = _method(model, method_name)
    app = request.app
    cancel = threading.Event()
    call = _call(model, method, first, p, cancel_event=cancel, **(template or {}))
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
                _record(app, model, _cancelled(_result(future, p)))
            raise
        gens = _result(future, p)
    if cancel.is_set():
        gens = _cancelled(gens)
    _record(app, model, gens)
    return gens


def _result(future: asyncio.Future[Any], p: sampling.SamplingParams) -> list[protocols.ChatGeneration]:
    """The generations; a handler's error about ``max_tokens`` names the field the client set
    (``max_completion_tokens`` sets the same budget)."""
    try:
        result: protocols.ChatGeneration | list[protocols.ChatGeneration] = future.result()
    except errors.BadRequestError as exc:
        budget = p.set_by.get("max_tokens", "max_tokens")
        if exc.param == "max_tokens" and budget != "max_tokens":
            exc.param = budget
            exc.message = exc.message.replace("max_tokens", budget)
        raise
    return result if isinstance(result, list) else [result]


def _cancelled(gens: list[protocols.ChatGeneration]) -> list[protocols.ChatGeneration]:
    return [dataclasses.replace(gen, finish_reason="cancelled") for gen in gens]


Events = dict[str, Any] | list[dict[str, Any]] | None
"""What a :class:`Chunks` callback returns: one event, several, or none."""


@dataclasses.dataclass
class Chunks:
    """How one endpoint shapes its stream events: the opening ones (for ``n`` choices), a
    piece of one choice (its text, index and logprobs; it may hold text back: tool calls), a
    choice's end (the whole generation), the usage. Each returns one event, several or none.
    ``encode`` writes one event (``data: ...`` by default) and ``done`` says whether
    ``data: [DONE]`` ends the stream (the Responses API sends none)."""

    start: Callable[[int], Events]
    content: Callable[[str, int, tuple[protocols.TokenLogprob, ...] | None], Events]
    end: Callable[[protocols.ChatGeneration], Events]
    usage: Callable[[openai.Usage], Events]
    encode: Callable[[dict[str, Any]], bytes] = http.sse
    done: bool = True

    def bytes_of(self, events: Events) -> bytes:
        return b"".join(self.encode(e) for e in ([events] if isinstance(events, dict) else events or []))

    async def write(self, response: web.StreamResponse, events: Events) -> None:
        data = self.bytes_of(events)
        if data:
            await response.write(data)

    def pieces(self, items: list[Item]) -> bytes:
        """Events for ``items``: text alone (one choice, no logprobs) joined into one; pieces
        merged per choice, in the order the choices first appear."""
        if all(isinstance(item, str) for item in items):
            return self.bytes_of(self.content("".join(items), 0, None))  # type: ignore[arg-type]
        merged: dict[int, tuple[str, list[protocols.TokenLogprob] | None]] = {}
        for item in items:
            piece = item if isinstance(item, protocols.Piece) else protocols.Piece(0, item)
            text, logprobs = merged.get(piece.index, ("", None))
            if piece.logprobs is not None:
                logprobs = [*(logprobs or []), *piece.logprobs]
            merged[piece.index] = (text + piece.text, logprobs)
        return b"".join(
            self.bytes_of(self.content(text, index, None if lp is None else tuple(lp)))
            for index, (text, lp) in merged.items()
        )


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
    queue: asyncio.Queue[Item | None] = asyncio.Queue()
    response = http.stream_response()
    began = time.monotonic()
    call = _call(
        model,
        method,
        first,
        p,
        cancel_event=cancel,
        on_token=app[keys.TOKENS].sender(queue),
        **(template or {}),
    )
    async with model.limiter.slot():
        future = loop.run_in_executor(app[keys.EXECUTOR], call)
        future.add_done_callback(lambda _: queue.put_nowait(None))
        prepared = False
        ended = False
        try:
            while not ended:
                try:
                    item = queue.get_nowait() if queue.qsize() else await _next(queue)
                except TimeoutError:
                    if http.client_gone(request):
                        raise ConnectionResetError("client went away") from None
                    continue
                if item is None:
                    break
                # the first piece goes out alone (time to first token); after it, the pieces
                # queued while the loop was busy (many streams share it) go out together
                rest, ended = _drain(queue) if prepared else ([], False)
                if not prepared:
                    prepared = True
                    metrics.ttft.labels(model.name).observe(time.monotonic() - began)
                    await response.prepare(request)
                    await chunks.write(response, chunks.start(p.n))
                if http.client_gone(request):
                    raise ConnectionResetError("client went away")
                data = chunks.pieces([item, *rest])
                if data:
                    await response.write(data)
            gens = _result(future, p)  # a handler error before any token: JSON error
        except BaseException as exc:
            await _finish(future, cancel)
            if future.done() and not future.cancelled() and future.exception() is None:
                _record(app, model, _cancelled(_result(future, p)))
            if isinstance(exc, asyncio.CancelledError) or not (prepared or http.client_gone(request)):
                raise
            if prepared and not isinstance(exc, ConnectionResetError) and not http.client_gone(request):
                await _error_event(response, exc)
            return response
    _record(app, model, gens)
    try:
        if not prepared:
            await response.prepare(request)
            await chunks.write(response, chunks.start(p.n))
        if not invoke.accepts(method, "on_token"):
            # a handler that cannot stream: its whole answer is one chunk
            for gen in gens:
                if gen.text:
                    await chunks.write(response, chunks.content(gen.text, gen.index, None))
        for gen in gens:
            await chunks.write(response, chunks.end(gen))
        if include_usage:
            await chunks.write(response, chunks.usage(usage(gens)))
        if chunks.done:
            await response.write(http.sse("[DONE]"))
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


async def _next(queue: asyncio.Queue[Item | None]) -> Item | None:
    return await asyncio.wait_for(queue.get(), _POLL)


def _drain(queue: asyncio.Queue[Item | None]) -> tuple[list[Item], bool]:
    """Everything queued now, and whether the end marker came."""
    items: list[Item] = []
    while not queue.empty():
        item = queue.get_nowait()
        if item is None:
            return items, True
        items.append(item)
    return items, False


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
