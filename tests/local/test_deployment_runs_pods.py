"""A Deployment's pods run as local processes with their own loopback IPs, the
EndpointSlice controller lists them once Ready, and scaling to zero stops the processes."""

from __future__ import annotations

import os
import urllib.request
from typing import Any

import pytest

pytestmark = pytest.mark.cluster

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: python:3.11-slim  # ignored: the command runs from the local environment
        command: [python, -m, http.server, --bind, $(POD_IP), "8080"]
        env:
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_deployment_pods_serve_on_distinct_ips_and_stop_when_scaled_to_zero(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    local_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=WEB)
    deployment = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
    wait(lambda: kube.request("GET", deployment)["status"].get("readyReplicas") == 2, 60,
         "2 ready replicas")

    pods = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                        query={"labelSelector": "app=web"})["items"]
    assert [p["status"]["phase"] for p in pods] == ["Running", "Running"]
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 2 and all(ip.startswith("127.") for ip in ips)

    def slice_ips() -> set[str]:
        slices = kube.request(
            "GET", f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            query={"labelSelector": "kubernetes.io/service-name=web"})["items"]
        return {address for s in slices for e in s.get("endpoints") or []
                if e.get("conditions", {}).get("ready") for address in e["addresses"]}

    wait(lambda: slice_ips() == ips, 30, f"an EndpointSlice listing {ips}")
    for ip in ips:
        with urllib.request.urlopen(f"http://{ip}:8080/", timeout=5) as response:
            assert response.status == 200

    pids = [pid for name, found in local_cluster.agent.pids().items()
            if name.startswith(f"{namespace}/web-") for pid in found]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)

    kube.request("PATCH", deployment, {"spec": {"replicas": 0}},
                 content_type="application/merge-patch+json")
    wait(lambda: not kube.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                                  query={"labelSelector": "app=web"})["items"], 30,
         "the pods to be gone")
    assert not any(_alive(pid) for pid in pids)
