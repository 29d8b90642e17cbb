"""The operator process never imports the ``kubernetes`` package (issue #22: its import alone was
about 13 MiB of the operator's memory): not with its modules, not when kopf is imported, not
when it loads its credentials and builds kopf's login from them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

PROBE = """
import sys
import modelyard.controllers.app as app
from modelyard.controllers import options
from modelyard.controllers.handlers import kopf_settings
ctx = app.make_context(options.OperatorOptions(kubeconfig=sys.argv[1], webhook=False))
info = kopf_settings.connection_info(ctx.cluster.credentials)
assert info.server == "https://127.0.0.1:6443" and info.token == "t", info
print(sorted(m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes.")))
"""


def test_the_operator_runs_its_login_without_the_kubernetes_package(tmp_path: Path) -> None:
    config = {
        "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }
    (tmp_path / "config").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "config")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
