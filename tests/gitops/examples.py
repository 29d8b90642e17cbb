"""Render docs/examples with the kubectl the local control plane ships (its built-in kustomize),
for the GitOps tests here and the dry-run apply in tests/controllers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


def kubectl() -> Path:
    """The cached kubectl, built on demand; a skip that says why when it cannot be built."""
    from modelyard.local import build

    try:
        return build.ensure_built(lambda msg: print(msg, file=sys.stderr, flush=True)) / "kubectl"
    except build.BuildError as exc:
        if os.environ.get("CI"):
            raise
        reason = f"kubectl (local control plane binaries) cannot be built: {exc}"
        print(reason, file=sys.stderr)
        pytest.skip(reason)


def render(path: Path = EXAMPLES) -> str:
    done = subprocess.run(
        [str(kubectl()), "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return done.stdout


def objects(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]
