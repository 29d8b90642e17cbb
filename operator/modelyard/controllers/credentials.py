"""Where the operator's API server is and how it logs in: a kubeconfig, or the pod's service
account (:mod:`modelyard.incluster`).

The operator's own client (:mod:`.cluster`) and kopf's login
(:mod:`.handlers.kopf_settings`) both use the :class:`Credentials` loaded here, so both talk to
the same cluster as the same user, and the operator process never imports the ``kubernetes``
package (its import alone was about 13 MiB of the operator's memory).

A kubeconfig is ``--kubeconfig``, else the first path in ``$KUBECONFIG``, else
``~/.kube/config``; its current context names the cluster (``server``,
``certificate-authority`` or ``-data``, ``insecure-skip-tls-verify``) and the user
(``client-certificate``/``client-key`` or their ``-data``, ``token`` or ``tokenFile``,
``username``/``password``, or an ``exec`` plugin that prints a token). Relative paths are
relative to the kubeconfig's directory, as kubectl reads them. Embedded data is written to
private temporary files (the ``ssl`` module and kopf read files). Auth providers, and exec
plugins that answer with a client certificate, are not supported: the kubeconfig is refused
with a message that says so.

Tokens read from a file (a service account's, or ``tokenFile``) are re-read at most every
``TOKEN_REFRESH_SECONDS``: the kubelet rotates bound tokens. An exec plugin runs again a minute
before its token's ``expirationTimestamp`` (without one, every ``EXEC_REFRESH_SECONDS``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import os
import pathlib
import ssl
import subprocess
import tempfile
import time
from typing import Any

import yaml

from modelyard import incluster

TOKEN_REFRESH_SECONDS = 60.0
EXEC_REFRESH_SECONDS = 600.0


class ConfigError(Exception):
    """The kubeconfig cannot be used (missing, no current context, unsupported credentials)."""


@dataclasses.dataclass
class Credentials:
    """The API server's address and how to authenticate to it."""

    server: str
    ca_path: str | None = None
    insecure: bool = False
    cert_path: str | None = None
    key_path: str | None = None
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    namespace: str | None = None
    """The context's (or the pod's) namespace, for kopf's default."""
    exec_plugin: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    """A kubeconfig user's ``exec`` (the command prints an ExecCredential)."""
    _read: tuple[float, str] | None = dataclasses.field(default=None, repr=False)

    def bearer_token(self) -> str | None:
        """The token to send (from ``token_file`` when given, re-read every minute; from the
        exec plugin when given, run again before its token expires)."""
        if self.exec_plugin is not None:
            if self._read is None or time.time() >= self._read[0]:
                self._read = run_exec_plugin(self.exec_plugin)
            return self._read[1]
        if self.token_file is None:
            return self.token
        now = time.monotonic()
        if self._read is None or now - self._read[0] >= TOKEN_REFRESH_SECONDS:
            self._read = (now, pathlib.Path(self.token_file).read_text().strip())
        return self._read[1]

    def authorization(self) -> str | None:
        """The ``Authorization`` header's value, if any."""
        token = self.bearer_token()
        if token:
            return f"Bearer {token}"
        if self.username is not None and self.password is not None:
            pair = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        return None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for an ``https`` server (None for plain ``http``)."""
        if not self.server.startswith("https"):
            return None
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.cert_path is not None:
            context.load_cert_chain(self.cert_path, self.key_path)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def load(kubeconfig: str | None = None) -> Credentials:
    """The pod's service account when running in a pod (and no ``kubeconfig`` given), else the
    kubeconfig."""
    account = incluster.detect() if kubeconfig is None else None
    if account is not None:
        return Credentials(
            server=account.server,
            ca_path=str(account.ca_file),
            token_file=str(account.token_file),
            namespace=account.namespace(),
        )
    return from_kubeconfig(kubeconfig_path(kubeconfig))


def kubeconfig_path(explicit: str | None = None) -> pathlib.Path:
    if explicit:
        return pathlib.Path(explicit).expanduser()
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return pathlib.Path(listed[0] if listed else "~/.kube/config").expanduser()


def from_kubeconfig(path: pathlib.Path) -> Credentials:
    """The current context's credentials from the kubeconfig at ``path``."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read the kubeconfig {path}: {exc}") from None
    name = doc.get("current-context")
    context = _named(doc, "contexts", name, path).get("context") or {}
    cluster = _named(doc, "clusters", context.get("cluster"), path).get("cluster") or {}
    user = (_named(doc, "users", context["user"], path).get("user") or {}) if context.get("user") else {}
    if "auth-provider" in user:
        raise ConfigError(
            f"{path}: auth providers are not supported; use a token, a certificate or an exec plugin"
        )
    if not cluster.get("server"):
        raise ConfigError(f"{path}: the cluster of context {name!r} has no server")
    base = path.parent
    token_file = None if user.get("token") else user.get("tokenFile")
    return Credentials(
        server=str(cluster["server"]).rstrip("/"),
        ca_path=_file(base, cluster, "certificate-authority"),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        cert_path=_file(base, user, "client-certificate"),
        key_path=_file(base, user, "client-key"),
        token=user.get("token") or None,
        token_file=str(base / pathlib.Path(token_file).expanduser()) if token_file else None,
        username=user.get("username"),
        password=user.get("password"),
        namespace=context.get("namespace"),
        exec_plugin=user.get("exec"),
    )


def run_exec_plugin(spec: dict[str, Any]) -> tuple[float, str]:
    """Run a kubeconfig's exec plugin: (when to run it again, epoch seconds; its token)."""
    env = {**os.environ, **{item["name"]: item["value"] for item in spec.get("env") or []}}
    version = spec.get("apiVersion") or "client.authentication.k8s.io/v1beta1"
    info = {"apiVersion": version, "kind": "ExecCredential", "spec": {"interactive": False}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        done = subprocess.run(
            [spec["command"], *(spec.get("args") or [])], env=env, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(
            f"the kubeconfig's exec plugin {spec.get('command')!r} did not run: {exc}"
        ) from None
    if done.returncode != 0:
        raise ConfigError(f"the exec plugin {spec['command']!r} failed: {done.stderr.strip()[-500:]}")
    status = (json.loads(done.stdout) or {}).get("status") or {}
    if not status.get("token"):
        raise ConfigError(
            f"the exec plugin {spec['command']!r} gave no token (client certificates are not supported)"
        )
    expires = status.get("expirationTimestamp")
    again = (
        datetime.datetime.fromisoformat(expires).timestamp() - 60
        if expires
        else time.time() + EXEC_REFRESH_SECONDS
    )
    return again, str(status["token"])


def _named(doc: dict[str, Any], section: str, name: Any, path: pathlib.Path) -> dict[str, Any]:
    for item in doc.get(section) or []:
        if item.get("name") == name:
            return dict(item)
    raise ConfigError(f"{path}: no {section[:-1]} named {name!r} (the current context's)")


def _file(base: pathlib.Path, section: dict[str, Any], key: str) -> str | None:
    """``key``'s file (relative to ``base``), or ``key-data`` written to a private temp file."""
    data = section.get(f"{key}-data")
    if data:
        handle, name = tempfile.mkstemp(prefix="modelyard-kube-")
        with os.fdopen(handle, "wb") as out:  # mkstemp's file is the user's only (0600)
            out.write(base64.b64decode(data))
        return name
    value = section.get(key)
    return None if not value else str(base / pathlib.Path(value).expanduser())
