"""The operator docs and the GitOps/image READMEs link only to files (and headings) that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import argo_lua

ROOT = argo_lua.ROOT
DOCS = [
    "docs/concepts.md",
    "docs/operations.md",
    "docs/architecture.md",
    "docs/examples/README.md",
    "docs/gitops/README.md",
    "images/README.md",
]


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc: str) -> None:
    path = ROOT / doc
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{doc}: broken link {target}"
        if anchor and linked.suffix == ".md":
            headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)}
            assert anchor in headings, f"{doc}: no heading #{anchor} in {Path(file).name or doc}"
