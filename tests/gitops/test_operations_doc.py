"""docs/operations.md cannot drift from the code: its troubleshooting tables name every phase and
reason the operator can write (read from the source by :mod:`.emitted`), and its metrics tables
every series the operator, gateway and runtime export (read from their registries)."""

from __future__ import annotations

import re

import pytest

from modelyard.controllers import metrics as operator_metrics
from modelyard.gateway import metrics as gateway_metrics
from modelyard.gateway import routes
from modelyard.runtime import metrics as runtime_metrics

from . import argo_lua, emitted

OPERATIONS = argo_lua.ROOT / "docs" / "operations.md"


def _section(heading: str) -> str:
    text = OPERATIONS.read_text()
    start = text.index(f"\n{heading}\n")
    level = heading.split(" ")[0]
    following = re.search(rf"\n#{{1,{len(level)}}} ", text[start + len(heading) + 1 :])
    return text[start : start + len(heading) + 1 + following.start()] if following else text[start:]


def _table_rows(section: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|")
    ]


@pytest.mark.parametrize("kind", argo_lua.KINDS)
def test_every_emitted_reason_is_in_the_troubleshooting_table(kind: str) -> None:
    rows = _table_rows(_section(f"### {kind}"))
    documented: set[tuple[str, str]] = set()
    for phase_cell, reason_cell, *_ in rows:
        phases = set(re.findall(r"[A-Z][a-z]+", phase_cell)) & emitted.PHASES[kind]
        reasons = set(re.findall(r"`([A-Za-z]+)`", reason_cell))
        if "any failure reason" in reason_cell:
            reasons |= emitted.endpoint_status._FAILING_WAITING | emitted.POD_FAILURE_REASONS
        documented |= {(p, r) for p in phases for r in reasons}
    missing = emitted.pairs(kind) - documented
    assert not missing, f"docs/operations.md ### {kind} lacks (phase, reason): {sorted(missing)}"


def _exported() -> set[str]:
    gateway = gateway_metrics.Metrics()
    gateway.watch_routes(routes.RouteTable)  # the collector of what the route table says
    gateway.watch_spills(dict)  # the collector of the balancer's PrefixHash spills
    registries = [
        operator_metrics.Metrics.create().registry,
        gateway.registry,
        runtime_metrics.Metrics().registry,
    ]
    names = set()
    for registry in registries:
        for family in registry.collect():
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_every_exported_metric_is_documented() -> None:
    section = _section("## Metrics")
    documented = set(re.findall(r"`(modelyard_[a-z_]+)`", section))
    exported = _exported()
    assert exported, "no metrics found"
    assert not exported - documented, f"undocumented metrics: {sorted(exported - documented)}"
    assert not documented - exported, f"documented but not exported: {sorted(documented - exported)}"
