"""The chart as installed, for the least-privilege and network tests: tests/charts/chartkit.py
(loaded by path, as conftest.py loads the operator fixtures) on a cluster of the module's own."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import kit
from kit import wait_for

ROOT = Path(__file__).resolve().parents[2]

chartkit = kit.load("charts/chartkit.py", "modelyard_security_chartkit")

NS = chartkit.NAMESPACE
NODES = ["sec-node-1:1:NVIDIA-L4", "sec-node-2:0"]


class Installed:
    """Release ``modelyard`` of charts/modelyard in ``modelyard-system`` of ``cluster``."""

    def __init__(self, cluster: Any, home: Path) -> None:
        self.cluster = cluster
        self.home = home

    def helm(self, *args: str, timeout: float = 420) -> Any:
        return chartkit.helm(*args, home=self.home, kubeconfig=self.cluster.kubeconfig, timeout=timeout)

    def install(self, *values: str) -> None:
        result = self.helm(
            "install", chartkit.RELEASE, str(chartkit.CHART), "--namespace", NS, "--create-namespace",
            "--wait", "--timeout", "300s", *values,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    def get(self, path: str) -> Any:
        return self.cluster.kube.get(path)

    def apply(self, manifest: str) -> None:
        result = self.cluster.kubectl("apply", "-f", "-", input=manifest, check=False)
        assert result.returncode == 0, result.stderr

    def can(self, service_account: str, *args: str) -> bool:
        """``kubectl auth can-i ... --as=system:serviceaccount:modelyard-system:<sa>``."""
        result = self.cluster.kubectl(
            "auth", "can-i", *args, f"--as=system:serviceaccount:{NS}:{service_account}", check=False
        )
        return result.stdout.strip() == "yes"

    def address(self, service: str, port_name: str | None = None) -> str:
        """``http://pod-ip:port`` of a ready endpoint of ``service`` (no kube-proxy locally),
        waiting for the Service's EndpointSlice to list one."""

        def ready() -> str | None:
            slices = self.get(
                f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
                f"?labelSelector=kubernetes.io/service-name%3D{service}"
            )["items"]
            for item in slices:
                ports = [p for p in item.get("ports") or [] if port_name in (None, p.get("name"))]
                for endpoint in item.get("endpoints") or []:
                    conditions = endpoint.get("conditions") or {}
                    if ports and conditions.get("ready") and not conditions.get("terminating"):
                        return f"http://{endpoint['addresses'][0]}:{ports[0]['port']}"
            return None

        found: str = wait_for(ready, 120, f"a ready endpoint of Service {NS}/{service}")
        return found

    def pods(self, component: str) -> list[dict[str, Any]]:
        found = self.get(
            f"/api/v1/namespaces/{NS}/pods?labelSelector=app.kubernetes.io/component%3D{component}"
        )
        return [p for p in found["items"] if not p["metadata"].get("deletionTimestamp")]


def http_get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:  # not listening (yet): status 0
        return 0, str(exc)


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
