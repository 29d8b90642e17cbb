"""The GitOps examples (docs/examples) are accepted by a real API server with the CRDs and the
operator's admission webhook: a server-side dry-run apply of an overlay that moves them into a
fresh namespace (so nothing of the session cluster is touched, and the overlay path is used the
way the README tells people to)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def _overlay(tmp_path: Path, namespace: str) -> Path:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"""
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
resources: [{os.path.relpath(EXAMPLES, overlay)}]
patches:
  - target: {{kind: Namespace, name: ml}}
    patch: |-
      $patch: delete
      apiVersion: v1
      kind: Namespace
      metadata: {{name: ml}}
transformers:
  - |-
    apiVersion: builtin
    kind: PatchTransformer
    metadata: {{name: cluster-scoped-model-entries}}
    target: {{group: modelyard.io, kind: ModelEntry}}
    patch: |-
      - op: remove
        path: /metadata/namespace
"""
    )
    return overlay


def test_examples_pass_a_server_side_dry_run(
    operator_ready_cluster: Any, operator: Any, namespace: str, tmp_path: Path
) -> None:
    cluster = operator_ready_cluster
    rendered = cluster.kubectl("kustomize", str(_overlay(tmp_path, namespace))).stdout
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(rendered) if doc)
    assert kinds.count("ModelEntry") == 4 and kinds.count("ModelEndpoint") == 4
    assert "TrainingJob" in kinds and "Namespace" not in kinds
    path = tmp_path / "rendered.yaml"
    path.write_text(rendered)
    done = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=gitops-test", "-f", str(path),
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    applied = [line for line in done.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len(kinds), done.stdout
    # The webhook saw them: the endpoints and the job only warn that their entries (not created
    # by a dry run) do not exist yet; nothing else is wrong with them.
    warnings = [line for line in done.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings, done.stderr
    # (and the job says which ModelEntry its output.register will create)
    expected = ("does not exist yet", "the registered ModelEntry will be")
    assert all(any(e in w for e in expected) for w in warnings), warnings
    # Nothing was created.
    assert cluster.kube.get("/apis/modelyard.io/v1alpha1/modelentries/qwen2-5-0-5b-instruct") is None
    assert (
        cluster.kube.get(f"/apis/modelyard.io/v1alpha1/namespaces/{namespace}/modelendpoints/chat-stable")
        is None
    )
