"""Calling a handler method with only the keyword arguments its signature accepts.

Built-in handlers take extras (``on_token``, ``sampling_params``); handlers written against the
model-server document do not. Passing only what a method accepts keeps both working; what a
client asked for explicitly is never dropped this way (:mod:`modelyard.runtime.sampling`
refuses it with a 400 instead).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


@functools.lru_cache(maxsize=256)
def _declared(func: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    """Names a callable declares as keywords, and whether it also takes ``**kwargs``."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return frozenset(), True
    names = frozenset(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _accepted(func: Callable[..., Any]) -> frozenset[str] | None:
    """Names a callable accepts as keywords; None when it takes ``**kwargs``."""
    names, var_keyword = _declared(func)
    return None if var_keyword else names


def declares(method: Callable[..., Any], name: str) -> bool:
    """Whether ``method`` names the keyword ``name`` in its signature (``**kwargs`` does not)."""
    return name in _declared(getattr(method, "__func__", method))[0]


def accepts(method: Callable[..., Any], name: str) -> bool:
    names = _accepted(getattr(method, "__func__", method))
    return names is None or name in names


def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``method(*args, **kwargs)`` minus the keywords it does not accept."""
    names = _accepted(getattr(method, "__func__", method))
    passed = {k: v for k, v in kwargs.items() if names is None or k in names}
    return method(*args, **passed)
