"""The ``train`` extra carries no Kubernetes client: ``modelyard train`` starts without one, and
without kopf (the trainer pod never talks to the API server; import-linter's
``pods-without-cluster`` contract keeps the package so)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


def test_modelyard_train_starts_where_kubernetes_and_kopf_cannot_be_imported(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"method": "flying"}))
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["kubernetes"] = None  # any import of it raises ImportError
        sys.modules["kopf"] = None
        from modelyard import cli
        sys.exit(cli.main(["train", "--config", {str(config)!r}, "--progress-port", "0"]))
        """
    )
    env = {**os.environ, "MODELYARD_TERMINATION_LOG": str(tmp_path / "termination-log")}
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    # The config is refused (exit 2, unrecoverable), not the start: no ImportError on the way.
    assert "ImportError" not in done.stderr and "ModuleNotFoundError" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert "method 'flying' is not one of" in (tmp_path / "termination-log").read_text()
