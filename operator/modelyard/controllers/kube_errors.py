"""The API server's refusals as exceptions, for the operator's client (:mod:`.cluster`).

Every answer of 400 or more raises an :class:`ApiError`; the statuses callers tell apart have
classes of their own::

    ApiError(status, reason, body)
    ├── ForbiddenError             403
    ├── NotFoundError              404, the object does not exist
    ├── ResourceNotFoundError      404, the API server does not serve the kind (CRD not installed)
    ├── ConflictError              409 (AlreadyExists, a failed precondition, an apply conflict)
    └── UnprocessibleEntityError   422 (invalid, a failed JSON-patch ``test``)

``ResourceNotFoundError`` is not a ``NotFoundError``: a missing kind is never read as a missing
object (the InferencePool CRD's absence must not look like "no pool yet"). The API server names
the object in a missing object's Status (``details.name``); for a path it does not serve it
answers ``404 page not found`` or a Status without a name.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An answer of 400 or more: ``status``, the Status ``reason`` and the decoded ``body``."""

    def __init__(self, status: int, reason: str, body: Any = None) -> None:
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"({status}) {reason}: {message}" if message else f"({status}) {reason}")
        self.status = status
        self.reason = reason
        self.body = body


class ForbiddenError(ApiError):
    pass


class NotFoundError(ApiError):
    pass


class ResourceNotFoundError(ApiError):
    """404 for a kind the API server does not serve (no object named in the answer)."""


class ConflictError(ApiError):
    pass


class UnprocessibleEntityError(ApiError):
    pass


_ERRORS: dict[int, type[ApiError]] = {
    403: ForbiddenError, 404: NotFoundError, 409: ConflictError, 422: UnprocessibleEntityError
}  # fmt: skip


def error(status: int, body: Any) -> ApiError:
    """The exception for an answer (``body``: the decoded Status, or its text)."""
    reason = str(body.get("reason") or "") if isinstance(body, dict) else ""
    cls = _ERRORS.get(status, ApiError)
    if status == 404:
        details = body.get("details") if isinstance(body, dict) else None
        if not (isinstance(details, dict) and details.get("name")):
            cls = ResourceNotFoundError
    return cls(status, reason or _REASONS.get(status, "Error"), body)


_REASONS = {403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid"}
