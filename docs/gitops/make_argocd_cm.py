"""Write argocd-cm.yaml from resource_customizations/ (run after changing a health.lua):

.venv/bin/python docs/gitops/make_argocd_cm.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("ModelEntry", "ModelEndpoint", "TrainingJob")
HEADER = """\
# The three health checks as argocd-cm keys, for `kubectl apply`-style installs or to copy into
# your own argocd-cm. GENERATED from resource_customizations/modelyard.io/<Kind>/health.lua by
# make_argocd_cm.py (tests/gitops checks they agree). With kustomize, use the component here.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""


def main() -> None:
    out = [HEADER]
    for kind in KINDS:
        out.append(f"  resource.customizations.health.modelyard.io_{kind}: |\n")
        script = (HERE / "resource_customizations" / "modelyard.io" / kind / "health.lua").read_text()
        out += [f"    {line}\n" if line else "\n" for line in script.splitlines()]
    (HERE / "argocd-cm.yaml").write_text("".join(out))


if __name__ == "__main__":
    main()
