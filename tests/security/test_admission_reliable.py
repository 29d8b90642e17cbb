"""Admission a platform can rely on (issue #14 item 8), as the chart runs it: two operator
replicas behind a webhook Service, a configuration the platform owns, the webhook CA in a Secret.

- the webhooks fail closed (``failurePolicy: Fail``) and never match kube-system;
- the serving certificate is renewed (12-second certificates here) while admission keeps
  answering, with no restart;
- a leader change never leaves the configuration empty: the stepping-down replica leaves it,
  the next one serves certificates of the same CA.

The replicas are ``modelyard operator`` processes with ``--webhook-service``; a selectorless
Service whose Endpoints name 127.0.0.1 plays the chart's leader-selecting Service (only the
Lease holder listens on the port).
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from kit import free_port, wait_for

VALIDITY = 12  # seconds: renewed every 8


@dataclass
class Replica:
    """One ``modelyard operator`` process of the pair."""

    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def leading(self) -> bool:
        return "holding the Lease" in self.log.read_text(errors="replace")


@dataclass
class Pair:
    cluster: Any
    namespace: str
    configuration: str
    port: int
    a: Replica
    b: Replica
    tenant_ns: str
    extra: dict[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        found: dict[str, Any] = self.cluster.kube.get(
            f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{self.configuration}"
        )
        return found

    def apply_bad_endpoint(self, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
        """An endpoint only the webhook refuses (an image outside allowedImagePrefixes)."""
        name = f"bad-{uuid.uuid4().hex[:6]}"
        manifest = (
            "apiVersion: modelyard.io/v1alpha1\nkind: ModelEndpoint\n"
            f"metadata: {{name: {name}, namespace: {namespace or self.tenant_ns}}}\n"
            "spec: {model: whatever, replicas: 0, image: evil.example/x:1}\n"
        )
        result: subprocess.CompletedProcess[str] = self.cluster.kubectl(
            "apply", "-f", "-", input=manifest, check=False
        )
        return result

    def serving_serial(self, bundle: bytes) -> int:
        """The serial of the certificate the webhook presents now, verified against ``bundle``
        for the Service's DNS name (what the API server checks)."""
        context = ssl.create_default_context(cadata=bundle.decode())
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        with context.wrap_socket(raw, server_hostname=f"hook.{self.namespace}.svc") as conn:
            der = conn.getpeercert(binary_form=True)
        assert der is not None
        return int(x509.load_der_x509_certificate(der).serial_number)


def _denied_by_webhook(result: subprocess.CompletedProcess[str]) -> bool:
    return 'admission webhook "validate-endpoint.modelyard.io" denied the request' in result.stderr and (
        "allowedImagePrefixes" in result.stderr
    )


@pytest.fixture(scope="module")
def pair(operator_ready_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    cluster = operator_ready_cluster
    tag = uuid.uuid4().hex[:6]
    ns, tenant_ns, configuration = f"adm-op-{tag}", f"adm-tenant-{tag}", f"adm-webhook-{tag}"
    port = free_port()
    for name in (ns, tenant_ns):
        cluster.kubectl("create", "namespace", name)
    cluster.kubectl("apply", "-f", "-", input=f"""
apiVersion: v1
kind: Service
metadata: {{name: hook, namespace: {ns}}}
spec: {{ports: [{{name: webhook, port: 443, targetPort: {port}}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: hook, namespace: {ns}}}
subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{{name: webhook, port: {port}}}]}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: {configuration}}}
""")  # fmt: skip
    logs = tmp_path_factory.mktemp("admission-pair")

    def replica(name: str) -> Replica:
        command = [
            sys.executable, "-m", "modelyard", "operator", "--kubeconfig", str(cluster.kubeconfig),
            "--namespace", ns, "--host", "127.0.0.1", "--metrics-port", str(free_port()),
            "--webhook-host", "127.0.0.1", "--webhook-port", str(port),
            "--webhook-service", f"{ns}/hook", "--webhook-configuration", configuration,
            "--webhook-ca-secret", "hook-ca", "--webhook-cert-validity", str(VALIDITY),
        ]  # fmt: skip
        return Replica(command, logs / f"{name}.log")

    found = Pair(cluster, ns, configuration, port, replica("a"), replica("b"), tenant_ns)
    found.a.start()
    try:
        wait_for(lambda: found.a.leading() and len(found.config().get("webhooks") or []) == 3, 120,
                 "replica a to lead and register its webhooks")  # fmt: skip
        found.b.start()
        wait_for(lambda: "waiting for the Lease" in found.b.log.read_text(errors="replace"), 60,
                 "b to stand by")  # fmt: skip
        yield found
    finally:
        found.a.stop()
        found.b.stop()
        # the configuration outlives the replicas by design (Fail): remove it, as helm uninstall does
        cluster.kubectl("delete", "validatingwebhookconfiguration", configuration, "--ignore-not-found")
        cluster.kubectl("delete", "namespace", ns, tenant_ns, "--wait=false", check=False)
        print(f"replica logs: {logs}", file=sys.stderr)


def test_webhooks_fail_closed_and_never_match_kube_system(pair: Pair) -> None:
    hooks = pair.config()["webhooks"]
    assert {h["name"] for h in hooks} == {
        "validate-endpoint.modelyard.io", "validate-training-job.modelyard.io", "validate-entry.modelyard.io",
    }  # fmt: skip
    for hook in hooks:
        assert hook["failurePolicy"] == "Fail"
        assert hook["clientConfig"]["service"] == {"name": "hook", "namespace": pair.namespace, "port": 443,
                                                   "path": f"/{hook['name'].split('.')[0]}"}  # fmt: skip
        excluded = [e for e in hook["namespaceSelector"]["matchExpressions"]
                    if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"]  # fmt: skip
        assert excluded and "kube-system" in excluded[0]["values"]
        assert {g for r in hook["rules"] for g in r["apiGroups"]} == {"modelyard.io"}
    assert _denied_by_webhook(pair.apply_bad_endpoint())
    # kube-system is never asked: the same endpoint goes in there, and the operator refuses it
    applied = pair.apply_bad_endpoint(namespace="kube-system")
    assert applied.returncode == 0, applied.stderr
    name = applied.stdout.split()[0].rpartition("/")[2]
    path = f"/apis/modelyard.io/v1alpha1/namespaces/kube-system/modelendpoints/{name}"
    try:
        def refused() -> dict[str, Any] | None:
            status: dict[str, Any] = (pair.cluster.kube.get(path) or {}).get("status") or {}
            return status if status.get("reason") == "ImageNotAllowed" else None

        status = wait_for(refused, 60, "the operator to refuse the image")
        assert "allowedImagePrefixes" in status["message"] and status["phase"] == "Failed"
    finally:
        pair.cluster.kubectl("delete", "modelendpoint", "-n", "kube-system", name, check=False)


def test_the_serving_certificate_is_renewed_while_admission_keeps_answering(pair: Pair) -> None:
    bundle = base64.b64decode(pair.config()["webhooks"][0]["clientConfig"]["caBundle"])
    serials: list[int] = []
    answers: list[bool] = []
    deadline = time.monotonic() + 120
    while len(set(serials)) < 3 and time.monotonic() < deadline:
        serials.append(pair.serving_serial(bundle))
        answers.append(_denied_by_webhook(pair.apply_bad_endpoint()))
        time.sleep(1)
    assert len(set(serials)) >= 3, f"{len(set(serials))} certificates in {len(serials)} looks"
    assert all(answers), f"{answers.count(False)} of {len(answers)} applies were not answered by the webhook"
    log = pair.a.log.read_text(errors="replace")
    assert log.count("webhook serving certificate renewed") >= 2
    assert log.count("holding the Lease") == 1  # the same process all along: no restart
    assert base64.b64decode(pair.config()["webhooks"][0]["clientConfig"]["caBundle"]) == bundle


def test_a_leader_change_never_leaves_the_configuration_empty(pair: Pair) -> None:
    before = pair.config()["webhooks"]
    counts: list[int] = []
    bundles: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            hooks = pair.config().get("webhooks") or []
            counts.append(len(hooks))
            bundles.update(h["clientConfig"].get("caBundle", "") for h in hooks)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        pair.a.stop(signal.SIGTERM)  # a clean stop: the path that emptied the configuration
        wait_for(pair.b.leading, 120, "replica b to take the Lease")
        wait_for(lambda: _denied_by_webhook(pair.apply_bad_endpoint()), 120, "b's webhook to deny")
        time.sleep(2)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert counts and min(counts) == 3, f"the configuration had {min(counts)} webhooks during the handover"
    assert bundles == {before[0]["clientConfig"]["caBundle"]}, "b serves from the same CA (one bundle)"
    # the next handover, by a kill this time (no clean-up code runs at all)
    pair.a.start()
    wait_for(lambda: "waiting for the Lease" in pair.a.log.read_text(errors="replace").rsplit("holding")[-1],
             60, "a to stand by")  # fmt: skip
    pair.b.stop(signal.SIGKILL)
    led_twice = lambda: pair.a.log.read_text(errors="replace").count("holding the Lease") == 2  # noqa: E731
    wait_for(led_twice, 120, "a to lead again")
    wait_for(lambda: _denied_by_webhook(pair.apply_bad_endpoint()), 120, "a's webhook to deny again")
    assert len(pair.config()["webhooks"]) == 3
