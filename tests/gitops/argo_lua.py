"""Run an Argo CD health script the way Argo CD does: the resource as the global ``obj`` (JSON
decoded into Lua tables, numbers as Lua 5.1 doubles, as gopher-lua has them), the script's
return value a table with ``status`` and ``message``. Lua 5.1 is what gopher-lua implements;
the tests also run 5.4 so nothing version-specific slips in."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CUSTOMIZATIONS = ROOT / "docs" / "gitops" / "resource_customizations" / "modelyard.io"
KINDS = ("ModelEntry", "ModelEndpoint", "TrainingJob")
LUA_VERSIONS = ("lua51", "lua54")
# Argo CD's health statuses (gitops-engine pkg/health).
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


@dataclasses.dataclass(frozen=True)
class Health:
    status: str
    message: str


def script(kind: str) -> str:
    return (CUSTOMIZATIONS / kind / "health.lua").read_text()


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def health(kind: str, obj: dict[str, Any], lua: str = "lua51") -> Health:
    """The health the script of ``kind`` gives ``obj``."""
    runtime = importlib.import_module(f"lupa.{lua}").LuaRuntime(unpack_returned_tuples=False)
    # Argo CD's sandbox opens only base, table, string and math (and no os, io, require).
    runtime.execute("os = nil; io = nil; require = nil; dofile = nil; loadfile = nil")
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(script(kind))
    assert result is not None, f"{kind}/health.lua returned nothing"
    return Health(status=str(result["status"]), message=str(result["message"] or ""))
