"""The Argo CD health checks in docs/gitops pass their own health_test.yaml cases (Argo CD's
format: inputPath + expected healthStatus), in Lua 5.1 with Argo CD's sandbox and in gopher-lua."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from . import argo_lua


def _cases() -> list[Any]:
    out = []
    for kind in argo_lua.KINDS:
        folder = argo_lua.CUSTOMIZATIONS / kind
        for case in yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]:
            out.append(pytest.param(kind, folder / case["inputPath"], case["healthStatus"],
                                    id=f"{kind}-{Path(case['inputPath']).stem}"))  # fmt: skip
    return out


@pytest.mark.parametrize(("kind", "path", "expected"), _cases())
def test_health_test_case(kind: str, path: Path, expected: dict[str, str], lua: Any) -> None:
    obj = yaml.safe_load(path.read_text())
    assert obj["kind"] == kind
    got = lua.health(kind, obj)
    assert (got.status, got.message) == (expected["status"], expected["message"])


def test_every_kind_has_a_script_and_cases_for_each_status_it_can_return() -> None:
    for kind in argo_lua.KINDS:
        folder = argo_lua.CUSTOMIZATIONS / kind
        cases = yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]
        statuses = {c["healthStatus"]["status"] for c in cases}
        assert statuses <= argo_lua.ARGO_STATUSES
        assert {"Healthy", "Progressing", "Degraded"} <= statuses, kind
        tested = {(folder / c["inputPath"]).resolve() for c in cases}
        assert tested == {p.resolve() for p in (folder / "testdata").glob("*.yaml")}, "untested testdata"
