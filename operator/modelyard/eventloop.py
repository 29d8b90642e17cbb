"""The event loop a long-running process runs on (the gateway, the operator): uvloop when it is
installed, else asyncio's own.

Both spend much of their time in the event loop and its transports (reading and writing
sockets, TLS, timers, callbacks); uvloop, the asyncio API on libuv, does that work in C (the
measurements: docs/benchmarks.md, "Gateway hot path" and the operator's tenth pass). Each
process has an ``--event-loop`` flag and an environment variable of its own
(``GATEWAY_EVENT_LOOP``, ``OPERATOR_EVENT_LOOP``) to choose:

* ``auto`` (the default): uvloop when it can be imported, else asyncio's loop;
* ``uvloop``: uvloop, and the process refuses to start without it;
* ``asyncio``: asyncio's own loop (to rule uvloop out when chasing a problem).

The loop is chosen once, before the process starts its work (:func:`new_loop`), and named in
its log.
"""

from __future__ import annotations

import asyncio
import importlib

CHOICES = ("auto", "uvloop", "asyncio")


class Unavailable(Exception):
    """The loop asked for cannot be had; the message says what to do."""


def resolve(flag: str | None, env: str | None, env_name: str) -> str:
    """The choice from the flag, else the environment variable ``env_name`` (its value
    ``env``), else ``auto``.

    Raises :class:`ValueError` naming the setting and the values allowed."""
    if flag is not None:
        source, value = "--event-loop", flag
    elif env is not None and env.strip():
        source, value = env_name, env.strip()
    else:
        return "auto"
    if value not in CHOICES:
        raise ValueError(f"{source} must be one of {', '.join(CHOICES)}, not {value!r}")
    return value


def new_loop(choice: str) -> tuple[asyncio.AbstractEventLoop, str]:
    """A new event loop for ``choice`` and the name of its kind (``uvloop`` or ``asyncio``)."""
    if choice not in CHOICES:
        raise ValueError(f"the event loop must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice != "asyncio":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if choice == "uvloop":
                raise Unavailable(
                    "--event-loop uvloop: uvloop is not installed "
                    "(install it, or run with --event-loop asyncio)"
                ) from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop, "uvloop"
    return asyncio.new_event_loop(), "asyncio"
