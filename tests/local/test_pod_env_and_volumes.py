"""A pod's process gets its env (values, fieldRefs, ConfigMap/Secret refs, envFrom) and its
volumes as per-pod directories, with mount paths in args and env rewritten to them."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.cluster

SCRIPT = """
import json, os, sys
config_file, secret_file, out_dir = sys.argv[1:4]
with open(os.path.join(out_dir, "written"), "w") as f:
    f.write("ok")
summary = {
    "config": open(config_file).read(), "secret": open(secret_file).read(),
    "written": open(os.path.join(out_dir, "written")).read(),
    "env": {k: os.environ.get(k) for k in (
        "GREETING", "TOKEN", "CM_greeting", "POD_NAME", "POD_NAMESPACE", "POD_IP", "DATA_DIR",
        "LABEL")},
    "data_dir_exists": os.path.isdir(os.environ["DATA_DIR"]),
}
with open("/dev/termination-log", "w") as f:
    json.dump(summary, f)
"""


def test_pod_process_sees_env_refs_and_rewritten_volume_paths(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    base = f"/api/v1/namespaces/{namespace}"
    kube.request("POST", f"{base}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
        "data": {"greeting": "hello", "file.txt": "from-configmap"}})
    kube.request("POST", f"{base}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "stringData": {"token": "s3cret"}})
    kube.request("POST", f"{base}/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "inspect", "labels": {"tier": "test"}},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [
                {"name": "config", "configMap": {"name": "settings"}},
                {"name": "creds", "secret": {"secretName": "creds"}},
                {"name": "scratch", "emptyDir": {}},
            ],
            "containers": [{
                "name": "main", "image": "ignored",
                "command": ["python", "-c", SCRIPT],
                "args": ["/etc/config/file.txt", "/etc/creds/token", "/scratch"],
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/config"},
                    {"name": "creds", "mountPath": "/etc/creds"},
                    {"name": "scratch", "mountPath": "/scratch"},
                ],
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CM_"}],
                "env": [
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {
                        "name": "settings", "key": "greeting"}}},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {
                        "name": "creds", "key": "token"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {
                        "fieldPath": "metadata.name"}}},
                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {
                        "fieldPath": "metadata.namespace"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {
                        "fieldPath": "status.podIP"}}},
                    {"name": "LABEL", "valueFrom": {"fieldRef": {
                        "fieldPath": "metadata.labels['tier']"}}},
                    {"name": "DATA_DIR", "value": "/scratch/data"},
                ],
            }],
        },
    })

    def finished() -> dict[str, Any] | None:
        status = kube.request("GET", f"{base}/pods/inspect")["status"]
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = wait(finished, 30, "the pod to finish")
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert status["phase"] == "Succeeded", terminated
    summary = json.loads(terminated["message"])
    assert summary["config"] == "from-configmap"
    assert summary["secret"] == "s3cret"
    assert summary["written"] == "ok"
    assert summary["env"] == {
        "GREETING": "hello", "TOKEN": "s3cret", "CM_greeting": "hello",
        "POD_NAME": "inspect", "POD_NAMESPACE": namespace, "POD_IP": status["podIP"],
        "LABEL": "test", "DATA_DIR": summary["env"]["DATA_DIR"],
    }
    assert summary["env"]["DATA_DIR"].endswith("/volumes/scratch/data")
