"""Render docs/examples with the kubectl the local control plane ships (its built-in kustomize),
for the GitOps tests here and the dry-run apply in tests/controllers."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

import kit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


def kubectl() -> Path:
    """The cached kubectl, built on demand; a skip that says why when it cannot be built."""
    return kit.local_binaries("kubectl (local control plane binaries)") / "kubectl"


def render(path: Path = EXAMPLES) -> str:
    done = subprocess.run(
        [str(kubectl()), "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return done.stdout


def objects(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]
