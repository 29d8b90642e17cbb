"""Running helm on charts/modelyard: render, lint, install into a local control plane."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelyard"
HERE = Path(__file__).parent
ALL_OPTIONS = HERE / "values-all-options.yaml"
GOLDEN = HERE / "golden"
RELEASE = "modelyard"
NAMESPACE = "modelyard-system"


def helm_bin() -> Path:
    """helm as `modelyard local build` makes it (.ci/setup runs that); skips, saying why, when
    it is missing outside CI."""
    from modelyard.local import build

    path = build.bin_dir() / "helm"
    if not path.exists():
        reason = f"{path} is missing: run `modelyard local build`"
        if os.environ.get("CI"):
            raise AssertionError(reason)
        print(reason)
        pytest.skip(reason)
    return path


def helm(*args: str, home: Path | None = None, kubeconfig: Path | None = None, timeout: float = 120,
         check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run helm; ``home`` keeps its cache/config/data apart from the user's (installs)."""
    env = dict(os.environ)
    if home is not None:
        for sub in ("cache", "config", "data"):
            env[f"HELM_{sub.upper()}_HOME"] = str(home / sub)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([str(helm_bin()), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=check)  # fmt: skip


def template(*extra: str) -> str:
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout


GENERATED = re.compile(r"(# generated at install.*\n\s*[\w.-]+: )\"[^\"]*\"")


def masked(text: str) -> str:
    """``text`` with the values the chart generates at install (random keys) replaced by a
    placeholder, so that golden files stay deterministic."""
    docs = GENERATED.sub(r'\1"<generated>"', text).split("\n---\n")
    for i, doc in enumerate(docs):  # the status API token (data: token: <random, base64>)
        if "kind: Secret" in doc and "name: modelyard-status-api-token" in doc:
            docs[i] = re.sub(r"(?m)^(  token: ).*$", r'\1"<generated>"', doc)
    return "\n---\n".join(docs)


def notes(tmp: Path, *extra: str) -> str:
    """NOTES.txt as ``helm install`` prints it (``helm template`` leaves it out, so it is
    rendered here as a template of a copy of the chart; ``--debug`` lets the text through)."""
    chart = tmp / "chart"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "templates" / "zz-notes.yaml")
    show = ("--show-only", "templates/zz-notes.yaml", "--debug")
    return helm("template", RELEASE, str(chart), "--namespace", NAMESPACE, *show, *extra).stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def ready_address(kube: Any, namespace: str, service: str) -> tuple[str, int]:
    """(pod IP, port) of a ready endpoint of ``service``, from its EndpointSlices: there is no
    kube-proxy on the local control plane, so ClusterIPs do not route."""
    slices = kube.get(
        f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        f"?labelSelector=kubernetes.io/service-name%3D{service}"
    )["items"]
    for item in slices:
        port = next(p["port"] for p in item.get("ports") or [])
        for endpoint in item.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            if conditions.get("ready") and not conditions.get("terminating"):
                return endpoint["addresses"][0], int(port)
    raise AssertionError(f"Service {namespace}/{service} has no ready endpoint")
