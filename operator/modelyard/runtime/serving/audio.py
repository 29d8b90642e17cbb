"""``/v1/audio/transcriptions`` and ``/v1/audio/translations`` (multipart uploads).

response_format: json, text, verbose_json (language, duration, segments with start/end
seconds), srt and vtt.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any, Literal

from aiohttp import hdrs, web

from modelyard.api import openai
from modelyard.runtime import errors, invoke, protocols
from modelyard.runtime.serving import http, keys

FORMATS = ("json", "text", "verbose_json", "srt", "vtt")


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, web.FileField):
        return None
    return str(value)


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _subtitles(result: protocols.SpeechResult, kind: str) -> str:
    lines = ["WEBVTT", ""] if kind == "vtt" else []
    sep = "." if kind == "vtt" else ","
    for n, seg in enumerate(result.segments, start=1):
        if kind == "srt":
            lines.append(str(n))
        lines.append(f"{_stamp(seg.start, sep)} --> {_stamp(seg.end, sep)}")
        lines.extend([seg.text, ""])
    return "\n".join(lines)


async def _speech(request: web.Request, task: Literal["transcribe", "translate"]) -> web.Response:
    app = request.app
    refused = openai.media_type_error(request.headers.get(hdrs.CONTENT_TYPE), form=True)
    if refused is not None:
        raise errors.UnsupportedMediaError(refused)
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise errors.BadRequestError("file: an audio file is required", param="file")
    name = _field(form, "model")
    if not name:
        raise errors.BadRequestError("model: field required", param="model")
    model = http.lookup(request, name, "speech")
    fmt = _field(form, "response_format") or "json"
    if fmt not in FORMATS:
        raise errors.BadRequestError(f"response_format: one of {', '.join(FORMATS)}", param="response_format")
    temperature: float | None = None
    raw_temperature = _field(form, "temperature")
    if raw_temperature:
        try:
            temperature = float(raw_temperature)
        except ValueError:
            raise errors.BadRequestError("temperature: must be a number", param="temperature") from None
        if not 0 <= temperature <= 1:
            raise errors.BadRequestError("temperature: must be between 0 and 1", param="temperature")
    granularities = [str(v) for v in form.getall("timestamp_granularities[]", [])]
    granularity: Literal["word", "segment"] | None = (
        "word" if "word" in granularities else ("segment" if granularities or fmt == "verbose_json" else None)
    )
    data = upload.file.read()
    fd, path = tempfile.mkstemp(prefix="modelyard-audio-", suffix=os.path.splitext(upload.filename or "")[1])
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        handler = model.handler
        kwargs: dict[str, Any] = {
            "language": _field(form, "language") if task == "transcribe" else None,
            "prompt": _field(form, "prompt"),
            "temperature": temperature,
            "task": task,
            "timestamp_granularity": granularity,
        }
        async with model.limiter.slot():
            result: protocols.SpeechResult = await asyncio.get_running_loop().run_in_executor(
                app[keys.EXECUTOR], lambda: invoke.call(handler.transcribe, path, **kwargs)
            )
    finally:
        os.unlink(path)
    if fmt == "text":
        return web.Response(text=result.text + "\n", content_type="text/plain")
    if fmt in ("srt", "vtt"):
        return web.Response(text=_subtitles(result, fmt), content_type="text/plain")
    if fmt == "json":
        return http.json_response({"text": result.text})
    body: dict[str, Any] = {
        "task": task,
        "language": result.language or ("english" if task == "translate" else "unknown"),
        "duration": result.duration,
        "text": result.text,
        "segments": [
            {
                "id": s.id,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": [],
                "temperature": temperature or 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": 0.0,
            }
            for s in result.segments
        ],
    }
    if granularity == "word":
        body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in result.words]
    return http.json_response(body)


async def transcriptions(request: web.Request) -> web.Response:
    return await _speech(request, "transcribe")


async def translations(request: web.Request) -> web.Response:
    return await _speech(request, "translate")
