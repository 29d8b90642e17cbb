"""Issue #14's mallory scenario on the cluster ``modelyard quickstart`` makes (the Helm chart with
its in-cluster operator, webhook and gateway): mallory, whose only rights are a Role on
ModelEndpoints and TrainingJobs in namespace ``mallory``, tries to take ``tiny-chat``.

Her manifest is denied at admission; forced in past admission (the webhook configuration
deleted, as a restore from backup would), her endpoint says ``ServedNameConflict`` naming the
``quickstart`` namespace, runs no pod, and 0 of the next 40 requests for ``tiny-chat`` reach it
(``modelyard_gateway_requests_total{endpoint="mallory/hijack"}``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ownershipkit as kit
import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(1500)]

HIJACK = """
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {name: hijack, namespace: mallory}
spec: {model: quickstart-tiny-chat, servedName: tiny-chat, weight: 1000, resources: {gpus: 0}}
"""

ROLE = [
    {"apiGroups": ["modelyard.io"], "resources": ["modelendpoints", "trainingjobs"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
]  # fmt: skip


class Admin:
    """kubectl on the quickstart cluster, as its admin (or ``--as`` someone)."""

    def __init__(self, plane: Any) -> None:
        from modelyard.local import build
        from modelyard.quickstart import cluster

        self.kubectl_bin = str(build.bin_dir() / "kubectl")
        self.env = cluster.tool_env(plane)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.kubectl_bin, *args], env=self.env, input=input, capture_output=True,
                              text=True, check=False, timeout=120)  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
        return done

    def apply(self, obj: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))


def _mallory_tenant(admin: Admin) -> None:
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mallory"}})
    admin.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "tenant", "namespace": "mallory"}, "rules": ROLE})  # fmt: skip
    admin.apply({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "tenant", "namespace": "mallory"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
    })  # fmt: skip


def _webhook_configuration(admin: Admin) -> str:
    """The chart's ValidatingWebhookConfiguration (the one whose webhooks check modelyard.io)."""
    found = json.loads(admin.kubectl("get", "validatingwebhookconfigurations", "-o", "json").stdout)
    for item in found["items"]:
        if any(w["name"].endswith(".modelyard.io") for w in item.get("webhooks") or ()):
            return str(item["metadata"]["name"])
    raise AssertionError("no modelyard webhook configuration is registered")


def _status(admin: Admin) -> dict[str, Any]:
    done = admin.kubectl("get", "modelendpoint", "hijack", "-n", "mallory", "-o", "json", check=False)
    status: dict[str, Any] = json.loads(done.stdout).get("status") or {} if done.returncode == 0 else {}
    return status


def _gateway_metrics(admin: Admin) -> str:
    """The /metrics of every running gateway pod, joined (the counters are per pod), on the
    container port named ``metrics`` where the chart has one, else on ``http``."""
    from modelyard.quickstart import manifests

    found = admin.kubectl("get", "pods", "-n", manifests.SYSTEM_NAMESPACE, "-l",
                          "app.kubernetes.io/component=gateway", "-o", "json")  # fmt: skip
    texts = []
    for pod in json.loads(found.stdout)["items"]:
        address = (pod.get("status") or {}).get("podIP")
        if pod["status"].get("phase") != "Running" or not address:
            continue
        ports = {
            p.get("name"): p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports") or ()
        }
        texts.append(kit.metrics_text(f"http://{address}:{ports.get('metrics') or ports['http']}"))
    assert texts, "no running gateway pod"
    return "\n".join(texts)


def test_mallory_gets_no_tiny_chat_traffic_on_the_quickstart_cluster(tmp_path: Path, wait: Any) -> None:
    from modelyard.local import build, controlplane
    from modelyard.quickstart import cluster

    try:
        build.ensure_built(lambda msg: print(msg, file=sys.stderr))
    except build.BuildError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"local control plane binaries cannot be built: {exc}")
    state_dir = tmp_path / "quickstart"
    plane = controlplane.ControlPlane(state_dir)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "modelyard", "quickstart", "--state-dir", str(state_dir)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        print(done.stdout[-4000:], done.stderr[-2000:], sep="\n")
        assert done.returncode == 0, done.stdout[-3000:]
        key = (state_dir / "api-key").read_text().strip()
        admin = Admin(plane)
        _mallory_tenant(admin)
        assert admin.kubectl("auth", "can-i", "create", "modelendpoints", "-n", "mallory",
                             "--as=mallory", check=False).stdout.strip() == "yes"  # fmt: skip
        assert admin.kubectl("auth", "can-i", "create", "modelentries", "--as=mallory",
                             check=False).stdout.strip() == "no"  # fmt: skip

        denied = admin.kubectl("apply", "--as=mallory", "-f", "-", input=HIJACK, check=False)
        print(denied.stderr)
        assert denied.returncode != 0, denied.stdout
        assert (
            "ModelEntry quickstart-tiny-chat may be deployed only from namespaces quickstart" in denied.stderr
        )
        assert "rule: " in denied.stderr

        configuration = _webhook_configuration(admin)
        with kit.webhook_bypassed(admin, configuration):
            admin.kubectl("apply", "-f", "-", input=HIJACK)

        wait(lambda: _status(admin).get("reason") == "ServedNameConflict", 120, "hijack's ServedNameConflict")
        status = _status(admin)
        print(status)
        assert status["phase"] == "Failed" and "namespaces quickstart" in status["message"]

        base_url = cluster.gateway_url(kube_client(plane))
        before = _gateway_metrics(admin)
        answers = [kit.chat(base_url.removesuffix("/v1"), "tiny-chat", key) for _ in range(40)]
        after = _gateway_metrics(admin)
        assert kit.requests_to(after, "mallory/hijack") == 0
        served = kit.requests_to(after, "quickstart/chat") - kit.requests_to(before, "quickstart/chat")
        assert served == 40, (served, answers[:3])
        pods = admin.kubectl("get", "pods", "-n", "mallory", "-o", "name").stdout.split()
        assert pods == [], "the operator ran a pod for an endpoint in conflict"
    finally:
        plane.down(grace=10, log=lambda msg: None)


def kube_client(plane: Any) -> Any:
    from modelyard.local import kube

    return kube.Kube(plane.kubeconfig)
