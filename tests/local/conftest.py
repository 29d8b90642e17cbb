"""Fixtures for the local control plane's own tests: the test namespace's pods, by the API."""

from __future__ import annotations

from typing import Any

import pytest


class Pods:
    """Pods of one namespace with one ``main`` container (its image is ignored: the node agent
    runs the command as a process)."""

    def __init__(self, kube: Any, namespace: str) -> None:
        self.kube = kube
        self.path = f"/api/v1/namespaces/{namespace}/pods"

    @staticmethod
    def manifest(name: str, container: dict[str, Any], policy: str = "Always", **spec: Any) -> dict[str, Any]:
        """The pod; ``spec`` adds to (or overrides) its spec: volumes, init containers, grace."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": policy,
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "ignored", **container}],
                **spec,
            },
        }

    def create(self, name: str, container: dict[str, Any], policy: str = "Always", **spec: Any) -> None:
        self.post(self.manifest(name, container, policy, **spec))

    def post(self, pod: dict[str, Any]) -> None:
        self.kube.request("POST", self.path, pod)

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.kube.request("GET", f"{self.path}/{name}")["status"])

    def main(self, name: str) -> dict[str, Any]:
        """The main container's status ({} before it has one)."""
        return dict((self.status(name).get("containerStatuses") or [{}])[0])


@pytest.fixture()
def pods(local_cluster: Any, namespace: str) -> Pods:
    return Pods(local_cluster.kube, namespace)
