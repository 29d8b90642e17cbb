"""The operator runs on uvloop when it is installed (``--event-loop``, ``OPERATOR_EVENT_LOOP``),
as the gateway does (tests/gateway/test_event_loop_choice.py): the whole run, kopf included, on
the loop chosen; a bad choice stops it at start with the setting and the values allowed."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from typing import Any

import pytest
import uvloop

from modelyard.controllers import app, cli, options


def _args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return parser.parse_args(["--no-webhook", *extra])


@pytest.mark.parametrize(("flag", "env", "kind"), [
    ((), None, uvloop.Loop), (("--event-loop", "asyncio"), None, asyncio.BaseEventLoop),
    ((), "asyncio", asyncio.BaseEventLoop), (("--event-loop", "uvloop"), "asyncio", uvloop.Loop),
])  # fmt: skip
def test_the_run_is_on_the_loop_chosen(
    monkeypatch: Any, flag: tuple[str, ...], env: str | None, kind: type
) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def run(opts: options.OperatorOptions) -> None:
        seen.append(asyncio.get_running_loop())

    monkeypatch.setattr(app, "run", run)
    if env is None:
        monkeypatch.delenv(cli.EVENT_LOOP_ENV, raising=False)
    else:
        monkeypatch.setenv(cli.EVENT_LOOP_ENV, env)
    assert cli._run(_args(*flag)) == 0
    assert len(seen) == 1 and isinstance(seen[0], kind)
    assert isinstance(seen[0], uvloop.Loop) == (kind is uvloop.Loop)
    assert seen[0].is_closed()


def test_a_bad_choice_stops_the_operator_with_a_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", "operator", "--no-webhook", "--kubeconfig", "/nonexistent"],
        env={"PATH": "/usr/bin:/bin", cli.EVENT_LOOP_ENV: "fast", "PYTHONPATH": ":".join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "OPERATOR_EVENT_LOOP must be one of auto, uvloop, asyncio, not 'fast'" in done.stderr
