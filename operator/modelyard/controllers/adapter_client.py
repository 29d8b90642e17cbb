"""The runtime's adapter API as the operator calls it (the contract of issue 20): vLLM's
``POST /v1/load_lora_adapter`` / ``/v1/unload_lora_adapter`` bodies, the transformers runtime's
``GET /v1/adapters``, and vLLM's ``GET /v1/models`` (adapters are the models with a ``parent``).

The pods run a tenant's image, so each answer is read bounded (:data:`MAX_ANSWER_BYTES`) and
parsed defensively: what does not fit the contract is a :class:`PodError`, never a crash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp

from modelyard.builders import adapters

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1024 * 1024


class PodError(Exception):
    """A pod did not answer as the contract says."""


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, payload: dict[str, Any] | None = None
) -> tuple[int, Any]:
    try:
        async with session.request(method, url, json=payload) as response:
            raw = await response.content.read(MAX_ANSWER_BYTES + 1)
            if len(raw) > MAX_ANSWER_BYTES:
                raise PodError(f"{url}: answer over {MAX_ANSWER_BYTES} bytes")
            try:
                return response.status, json.loads(raw) if raw else None
            except ValueError:
                return response.status, raw.decode(errors="replace")[:500]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PodError(f"{url}: {exc.__class__.__name__}: {exc}") from exc


def _message(answer: Any) -> str:
    """The OpenAI error shape's message, or the answer as text."""
    if isinstance(answer, dict):
        error = answer.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:1000]
        if answer.get("message"):
            return str(answer["message"])[:1000]
    return str(answer)[:1000]


def parse_report(engine: str, answer: Any) -> adapters.PodReport:
    """A pod's answer to ``GET /v1/adapters`` (transformers) or ``GET /v1/models`` (vLLM)."""
    if not isinstance(answer, dict):
        raise PodError(f"not a JSON object: {str(answer)[:200]}")
    loaded: dict[str, str] = {}
    errors: dict[str, tuple[str, str]] = {}
    if engine == "vllm":
        for model in answer.get("data") or ():
            if isinstance(model, dict) and model.get("parent") and model.get("id"):
                loaded[str(model["id"])] = str(model.get("root") or "")
        return adapters.PodReport(loaded, errors)
    for item in answer.get("loaded") or ():
        if isinstance(item, dict) and item.get("name"):
            loaded[str(item["name"])] = str(item.get("path") or "")
    for item in answer.get("errors") or ():
        if isinstance(item, dict) and item.get("name"):
            errors[str(item["name"])] = (str(item.get("path") or ""), str(item.get("message") or "")[:1000])
    return adapters.PodReport(loaded, errors)


async def pod_report(session: aiohttp.ClientSession, base: str, engine: str) -> adapters.PodReport:
    path = "/v1/models" if engine == "vllm" else "/v1/adapters"
    status, answer = await _call(session, "GET", base + path)
    if status != 200:
        raise PodError(f"GET {path}: HTTP {status}: {_message(answer)}")
    return parse_report(engine, answer)


async def push(
    session: aiohttp.ClientSession, base: str, load: Iterable[adapters.Wanted], unload: Iterable[str]
) -> dict[str, tuple[str, str]]:
    """Unload, then load (vLLM's documented bodies); the refused loads: name -> (path, message)."""
    for name in unload:
        status, answer = await _call(session, "POST", base + "/v1/unload_lora_adapter", {"lora_name": name})
        if status not in (200, 404):
            log.warning("%s: unload %s: HTTP %s: %s", base, name, status, _message(answer))
    refused: dict[str, tuple[str, str]] = {}
    for wanted in load:
        body = {"lora_name": wanted.name, "lora_path": wanted.path}
        status, answer = await _call(session, "POST", base + "/v1/load_lora_adapter", body)
        if status != 200:
            refused[wanted.name] = (wanted.path, f"HTTP {status}: {_message(answer)}")
    return refused
