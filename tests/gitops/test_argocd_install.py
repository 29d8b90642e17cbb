"""The health checks install the two ways docs/gitops/README.md says: the kustomize Component
merges them into an existing argocd-cm (keeping what it had), and the plain argocd-cm.yaml
carries the very same scripts."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from . import argo_lua, examples

GITOPS = argo_lua.ROOT / "docs" / "gitops"


def _keys() -> dict[str, str]:
    return {
        f"resource.customizations.health.modelyard.io_{kind}": argo_lua.script(kind)
        for kind in argo_lua.KINDS
    }


def test_the_component_merges_the_scripts_into_argocd_cm(tmp_path: Path) -> None:
    install = tmp_path / "argocd"
    install.mkdir()
    (install / "argocd-cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: argocd-cm, labels: {app.kubernetes.io/part-of: argocd}}\n"
        "data: {url: 'https://argocd.example.com'}\n"
    )
    (install / "kustomization.yaml").write_text(
        f"namespace: argocd\nresources: [argocd-cm.yaml]\ncomponents: [{os.path.relpath(GITOPS, install)}]\n"
    )
    rendered = examples.objects(examples.render(install))
    assert len(rendered) == 1
    cm = rendered[0]
    assert (cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("argocd-cm", "argocd")
    assert cm["metadata"]["labels"] == {"app.kubernetes.io/part-of": "argocd"}
    assert cm["data"] == {"url": "https://argocd.example.com", **_keys()}


def test_the_plain_argocd_cm_snippet_holds_the_same_scripts() -> None:
    cm = yaml.safe_load((GITOPS / "argocd-cm.yaml").read_text())
    assert (cm["kind"], cm["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert cm["data"] == _keys(), "stale: run .venv/bin/python docs/gitops/make_argocd_cm.py"
