"""Kubernetes objects kept in memory: plain, and sharing their repeated strings.

A watch parses every event afresh, so each copy of an object brings its own copies of the same
keys (``lastTransitionTime``, ``metadata``) and values (``True``, a namespace, a label). Kept for
a fleet, those copies are most of the memory; :func:`plain` keeps one of each.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

SHORT = 64
"""Strings up to this length are interned (names, reasons, timestamps); longer ones are rarely
shared (messages, JSON in annotations)."""


def plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists (a watcher hands out read-only mapping views,
    and may reuse its dicts after the call), keys and short strings interned."""
    if isinstance(value, Mapping):
        return {sys.intern(str(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) <= SHORT:
        return sys.intern(value)
    return value
