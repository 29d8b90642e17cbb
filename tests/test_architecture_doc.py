"""docs/architecture.md's module layout is the package as it is: every module and package it names
exists where it says, and every package of ``modelyard`` appears in it (a moved or renamed module
fails here until the drawing follows)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "modelyard"


def _layout() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("## Module layout", 1)[1].split("```", 2)[1]
    return block.splitlines()[2:]  # after "modelyard/"


def _named() -> list[Path]:
    """Each path the layout names: ``name.py`` and ``name/`` tokens, under the package directory
    of the nearest line above indented less (the tree's parent)."""
    found: list[Path] = []
    parents: list[tuple[int, Path]] = [(-1, PACKAGE)]
    for line in _layout():
        indent = len(line) - len(line.lstrip())
        head = line.split(maxsplit=1)[0] if line.strip() else ""
        while parents and parents[-1][0] >= indent:
            parents.pop()
        base = parents[-1][1]
        if head.endswith("/") and re.fullmatch(r"[a-z_]+/", head):
            found.append(base / head.rstrip("/"))
            parents.append((indent, base / head.rstrip("/")))
            continue
        for token in re.findall(r"(?<![\w/`(])([a-z_]+\.py)\b", line):
            found.append(base / token)
    return found


def test_every_module_the_layout_names_exists() -> None:
    missing = [str(p.relative_to(ROOT)) for p in _named() if not p.exists()]
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_package_is_in_the_layout() -> None:
    named = set(_named())
    packages = [p.parent for p in PACKAGE.glob("*/__init__.py")]
    absent = [str(p.relative_to(ROOT)) for p in packages if p not in named]
    assert not absent, f"packages missing from docs/architecture.md's module layout: {absent}"
