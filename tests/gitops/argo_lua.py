"""Run an Argo CD health script the way Argo CD does (argo-cd ``util/lua/lua.go``): Lua 5.1, as
gopher-lua implements it; only the base, table and package libraries (a script from argocd-cm
gets no ``string`` or ``math`` unless ``useOpenLibs`` is set); the resource as the global ``obj``
(JSON decoded into tables, every number a double); the returned table's ``status`` and
``message``. ``gopher_lua.py`` runs the same scripts in gopher-lua itself where Go is at hand."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CUSTOMIZATIONS = ROOT / "docs" / "gitops" / "resource_customizations" / "modelyard.io"
KINDS = ("ModelEntry", "ModelEndpoint", "TrainingJob")
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


# Argo CD opens package, base, table and a safe os (time only); take the rest away, with the
# string metatable that would let ("x"):sub() through.
_SANDBOX = """
local strings = getmetatable("")
if strings ~= nil then strings.__index = nil end
string = nil; math = nil; io = nil; debug = nil; coroutine = nil; os = nil
dofile = nil; loadfile = nil
"""


def health(kind: str, obj: dict[str, Any]) -> Health:
    """The health the script of ``kind`` gives ``obj``."""
    runtime = importlib.import_module("lupa.lua51").LuaRuntime(unpack_returned_tuples=False)
    runtime.execute(_SANDBOX)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(script(kind))
    assert result is not None, f"{kind}/health.lua returned nothing"
    return Health(status=str(result["status"]), message=str(result["message"] or ""))
