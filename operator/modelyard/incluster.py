"""Where a pod finds its service account, shared by the operator and the gateway.

Kubernetes mounts a pod's service-account token, CA bundle and namespace under
``/var/run/secrets/kubernetes.io/serviceaccount`` and sets ``KUBERNETES_SERVICE_HOST`` /
``KUBERNETES_SERVICE_PORT``. Both processes read that directory from the environment variable
``MODELYARD_SERVICE_ACCOUNT_DIR`` (default: the standard path), because the local node agent
runs pods as plain processes: it rewrites mount paths found in env values to the volume's real
directory, never paths hard-coded in a program. The chart sets the variable to the standard
path, so the same manifest is right in a real cluster and under the agent.

Plain standard library on purpose: the lowest layer, importable by controllers and gateway
alike (they must not import each other).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import pathlib

DEFAULT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DIR_ENV = "MODELYARD_SERVICE_ACCOUNT_DIR"


@dataclasses.dataclass(frozen=True)
class ServiceAccount:
    """The files of a mounted service account and the API server's address."""

    directory: pathlib.Path
    host: str
    port: str

    @property
    def token_file(self) -> pathlib.Path:
        return self.directory / "token"

    @property
    def ca_file(self) -> pathlib.Path:
        return self.directory / "ca.crt"

    @property
    def server(self) -> str:
        """``https://host:port`` (an IPv6 host in brackets)."""
        host = self.host
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        return f"https://{host}:{self.port}"

    def token(self) -> str:
        """The current token (re-read on each call: the kubelet rotates it)."""
        return self.token_file.read_text().strip()

    def namespace(self) -> str | None:
        path = self.directory / "namespace"
        return path.read_text().strip() if path.is_file() else None


def service_account_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get(DIR_ENV) or DEFAULT_DIR)


def detect() -> ServiceAccount | None:
    """The pod's service account, or None when not running in a pod (no token, no API host)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    found = ServiceAccount(service_account_dir(), host or "", port or "")
    if not host or not port or not found.token_file.is_file():
        return None
    return found
