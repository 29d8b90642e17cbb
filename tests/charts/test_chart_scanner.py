"""A third-party scanner (checkov's Kubernetes checks) on ``helm template charts/modelyard``
with default values fails only what docs/security.md explains as deliberate.

The allow-list is the table under "## Deliberate scanner findings" in docs/security.md: one row
per check, ``| `CKV_…` | Kind/name, Kind/name (or *) | why |``. A failed check whose
(check, Kind/name) is not in it fails this test, with the row to add printed; a row that no
longer fails is only reported (a chart change fixed it: delete the row).

checkov lives in a virtual environment of its own (``.ci/setup`` makes it):
``~/.cache/modelyard/checkov-venv``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import chartkit
import pytest

CHECKOV = Path.home() / ".cache" / "modelyard" / "checkov-venv" / "bin" / "checkov"
SECURITY_DOC = chartkit.ROOT / "docs" / "security.md"
SECTION = "## Deliberate scanner findings"


def checkov_bin() -> Path:
    if not CHECKOV.exists():
        reason = f"{CHECKOV} is missing: run .ci/setup (it installs checkov in a venv of its own)"
        if os.environ.get("CI"):
            raise AssertionError(reason)
        pytest.skip(reason)
    return CHECKOV


def allowed_findings(doc: str) -> dict[str, set[str]]:
    """check id -> the ``Kind/name`` resources (or ``*``) its row of the section allows."""
    _, found, rest = doc.partition(SECTION)
    assert found, f"docs/security.md has no {SECTION!r} section"
    section = rest.split("\n## ", 1)[0]
    allowed: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`?(CKV2?_K8S_\d+)`?", cells[0]) if len(cells) >= 3 else None
        if match:
            resources = {r.strip().strip("`") for r in cells[1].split(",") if r.strip()}
            allowed.setdefault(match.group(1), set()).update(resources)
    return allowed


def resource_of(checkov_resource: str) -> str:
    """checkov's ``Kind.namespace.name[.labels…]`` as ``Kind/name``."""
    parts = checkov_resource.split(".")
    return f"{parts[0]}/{parts[2] if len(parts) > 2 else parts[-1]}"


def scan(manifest: Path) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    done = subprocess.run(
        [str(checkov_bin()), "-f", str(manifest), "--framework", "kubernetes", "--quiet", "--compact",
         "-o", "json", "--skip-download"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(f["check_id"], resource_of(f["resource"]), f["check_name"])
              for f in report["results"]["failed_checks"]]  # fmt: skip
    return report["summary"], failed


def test_the_allow_list_parses_rows_of_the_section() -> None:
    doc = "# x\n## Deliberate scanner findings\n| check | resources | why |\n|---|---|---|\n" \
          "| `CKV_K8S_43` | Deployment/a, Deployment/b | no digest by default |\n" \
          "| CKV2_K8S_6 | * | x |\n## Next\n| `CKV_K8S_1` | * | not this section |\n"  # fmt: skip
    assert allowed_findings(doc) == {"CKV_K8S_43": {"Deployment/a", "Deployment/b"}, "CKV2_K8S_6": {"*"}}
    assert resource_of("Pod.modelyard-system.modelyard-gateway.app.kubernetes.io/name-modelyard") == (
        "Pod/modelyard-gateway"
    )
    assert resource_of("ClusterRole.default.modelyard-operator") == "ClusterRole/modelyard-operator"


def test_checkov_fails_only_the_deliberate_findings_on_the_default_chart(tmp_path: Path) -> None:
    manifest = tmp_path / "modelyard.yaml"
    manifest.write_text(chartkit.template())
    summary, failed = scan(manifest)
    allowed = allowed_findings(SECURITY_DOC.read_text())
    unexplained = [
        (check, resource, name)
        for check, resource, name in failed
        if not ({resource, "*"} & allowed.get(check, set()))
    ]
    seen = {(check, resource) for check, resource, _ in failed}
    stale = [
        (check, resource)
        for check, resources in allowed.items()
        for resource in resources
        if resource != "*" and (check, resource) not in seen
    ]
    print(f"checkov: {summary['passed']} passed, {summary['failed']} failed")
    if stale:
        print("rows (or resources) in docs/security.md that no longer fail; delete them:", stale)
    assert not unexplained, (
        "checkov findings not explained in docs/security.md's "
        f"{SECTION!r} (fix the chart, or add a row with the reason):\n"
        + "\n".join(f"| `{c}` | {r} | <why: {n}> |" for c, r, n in unexplained)
    )
