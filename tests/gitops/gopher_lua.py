"""Run health scripts in gopher-lua itself, the Lua Argo CD embeds: ``gopherlua/main.go`` is a
copy of Argo CD's ``runLua`` / ``ExecuteHealthLua`` (sandbox, ``obj`` decoding, status check),
built once per session with the Go toolchain the local control plane is built with."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from . import argo_lua

SOURCE = Path(__file__).resolve().parent / "gopherlua"


def build(out: Path) -> Path:
    """Build the runner into ``out``; skip (saying why) when Go is missing, fail under CI."""
    from modelyard.local import build as local_build

    go = shutil.which("go") or next((p for p in ("/usr/local/go/bin/go",) if Path(p).exists()), None)
    problem = None
    if go is None:
        problem = "the Go toolchain is not installed"
    else:
        binary = out / "argolua"
        done = subprocess.run(
            [go, "build", "-o", str(binary), "."], cwd=SOURCE, env=local_build.go_env(),
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode == 0:
            return binary
        problem = f"go build of tests/gitops/gopherlua failed: {done.stderr[-2000:]}"
    if os.environ.get("CI"):
        raise RuntimeError(problem)
    print(f"gopher-lua runs skipped: {problem}", file=sys.stderr)
    pytest.skip(problem)


class GopherLua:
    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def health(self, kind: str, obj: dict[str, Any]) -> argo_lua.Health:
        calls = [{"script": argo_lua.script(kind), "obj": obj}]
        done = subprocess.run(
            [str(self.binary)],
            input=json.dumps(calls),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        (result,) = json.loads(done.stdout)
        assert not result.get("error"), f"{kind}/health.lua failed in gopher-lua: {result['error']}"
        return argo_lua.Health(status=result["status"], message=result["message"])
