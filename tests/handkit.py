"""The operator's side of the gateway's contract, done by hand on the real control plane: the
gateway tests that run no operator create ModelEndpoints, write their status through the status
subresource, and create the Services, EndpointSlices and Secrets the operator and the
EndpointSlice controller would (pointing at fake model servers on 127.x)."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

GROUP = "/apis/modelyard.io/v1alpha1"
MERGE = "application/merge-patch+json"
MANAGED = {"app.kubernetes.io/managed-by": "modelyard"}


class HandOperator:
    """Writes one namespace's objects as the operator would."""

    def __init__(self, kube: Any, namespace: str) -> None:
        self.kube = kube
        self.ns = namespace

    def create_endpoint(self, name: str, spec: dict[str, Any]) -> None:
        self.kube.request(
            "POST",
            f"{GROUP}/namespaces/{self.ns}/modelendpoints",
            {
                "apiVersion": "modelyard.io/v1alpha1",
                "kind": "ModelEndpoint",
                "metadata": {"name": name},
                "spec": spec,
            },
        )

    def patch_endpoint(self, name: str, spec: dict[str, Any]) -> None:
        self.kube.request(
            "PATCH", f"{GROUP}/namespaces/{self.ns}/modelendpoints/{name}", {"spec": spec}, content_type=MERGE
        )

    def endpoint_status(self, name: str, status: dict[str, Any]) -> None:
        self.kube.request(
            "PATCH",
            f"{GROUP}/namespaces/{self.ns}/modelendpoints/{name}/status",
            {"status": status},
            content_type=MERGE,
        )

    def service(self, endpoint: str) -> None:
        self.kube.request(
            "POST",
            f"/api/v1/namespaces/{self.ns}/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": endpoint, "labels": {**MANAGED, "modelyard.io/endpoint": endpoint}},
                "spec": {"ports": [{"name": "http", "port": 8000, "protocol": "TCP"}]},
            },
        )

    def endpoint_slice(
        self,
        endpoint: str,
        slice_name: str,
        url: str,
        conditions: dict[str, bool],
        labels: dict[str, str] | None = None,
    ) -> None:
        """An EndpointSlice with one address, the fake server's at ``url`` (each fake has its own
        port, and a slice has one port)."""
        parsed = urllib.parse.urlsplit(url)
        self.kube.request(
            "POST",
            f"/apis/discovery.k8s.io/v1/namespaces/{self.ns}/endpointslices",
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": slice_name,
                    "labels": {
                        **(labels or {}),
                        "modelyard.io/endpoint": endpoint,
                        "kubernetes.io/service-name": endpoint,
                        "endpointslice.kubernetes.io/managed-by": "modelyard-tests",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [parsed.hostname], "conditions": conditions}],
                "ports": [{"name": "http", "port": parsed.port, "protocol": "TCP"}],
            },
        )

    def secret(self, name: str, data: dict[str, str], method: str = "POST") -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        path = f"/api/v1/namespaces/{self.ns}/secrets" + (f"/{name}" if method == "PUT" else "")
        self.kube.request(method, path, body)
