"""One response shape for every /api route, and the one way requests are parsed.

    {"success": true, "data": ..., "total": N}                   (total on lists)
    {"success": false, "error": {"code": ..., "message": ...}}   (4xx/5xx)

:class:`ApiError` is the one exception a handler raises for a client's mistake; the guard
middleware turns it (and aiohttp's own HTTP errors) into the error shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from aiohttp import web

from modelyard.statusapi import schemas

R = TypeVar("R", bound=schemas.Request)


class ApiError(Exception):
    """A request the API refuses: HTTP ``status``, a stable ``code``, a message naming the field."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def ok(data: Any, total: int | None = None) -> web.Response:
    payload: dict[str, Any] = {"success": True, "data": data}
    if total is not None:
        payload["total"] = total
    return web.json_response(payload, dumps=_dumps)


def encode(data: Any, total: int | None = None) -> bytes:
    """The success envelope as bytes (for responses worth caching)."""
    payload: dict[str, Any] = {"success": True, "data": data}
    if total is not None:
        payload["total"] = total
    return _dumps(payload).encode()


def ok_bytes(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def error(status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> web.Response:
    body = schemas.ErrorBody(code=code, message=message, details=details).model_dump(exclude_none=True)
    return web.json_response({"success": False, "error": body}, status=status, dumps=_dumps)


def from_api_error(exc: ApiError) -> web.Response:
    return error(exc.status, exc.code, exc.message, exc.details)


def invalid(exc: pydantic.ValidationError, where: str) -> ApiError:
    """400 naming every bad field (``gpu_count: Input should be greater than or equal to 1``)."""
    details = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or where
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown {where} field"
        details.append({"field": field, "message": message})
    text = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return ApiError(400, "invalid_request", text, details)


def parse_query(model: type[R], query: Mapping[str, str]) -> R:
    """The query string as ``model`` (empty values count as absent)."""
    try:
        return model.model_validate({k: v for k, v in query.items() if v != ""})
    except pydantic.ValidationError as exc:
        raise invalid(exc, "query") from None


async def parse_body(model: type[R], request: web.Request) -> R:
    """The JSON body as ``model``: 400 for bad JSON or a bad field, 413 when too large."""
    raw = await request.read()
    try:
        doc = json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    try:
        return model.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise invalid(exc, "body") from None
