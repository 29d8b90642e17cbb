"""Small helpers for status conditions and timestamps."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def condition(
    kind: str, ok: bool, reason: str, message: str, generation: int, previous: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == kind), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == status else now()
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def status_changed(current: dict[str, Any], status: dict[str, Any]) -> bool:
    """Whether writing ``status`` would change what a person sees (timestamps aside)."""
    if any(current.get(k) != v for k, v in status.items() if k != "conditions"):
        return True

    def essence(items: Any) -> list[tuple[Any, ...]]:
        return [(c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in items or []]

    return essence(current.get("conditions")) != essence(status.get("conditions"))
