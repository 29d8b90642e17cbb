"""``lua``: each Argo CD health check test runs twice, in lupa's Lua 5.1 with Argo CD's sandbox
and in gopher-lua through a copy of Argo CD's own runner."""

from __future__ import annotations

from typing import Any

import pytest

from . import argo_lua, gopher_lua


@pytest.fixture(scope="session")
def _gopher_lua(tmp_path_factory: pytest.TempPathFactory) -> gopher_lua.GopherLua:
    return gopher_lua.GopherLua(gopher_lua.build(tmp_path_factory.mktemp("argolua")))


class _Lupa:
    def health(self, kind: str, obj: dict[str, Any]) -> argo_lua.Health:
        return argo_lua.health(kind, obj)


@pytest.fixture(params=["lupa-lua5.1", "gopher-lua"])
def lua(request: pytest.FixtureRequest) -> Any:
    if request.param == "gopher-lua":
        return request.getfixturevalue("_gopher_lua")
    return _Lupa()
