"""A minimal JSON client for the Kubernetes API, for the node agent and the test fixtures.

The node agent speaks raw API objects (dicts) everywhere: it copies pod specs into process
arguments and patches status subresources. The generated ``kubernetes`` client validates
bodies against its typed models and converts field names, which gets in the way of that,
so the agent uses this thin layer over ``urllib3`` (already a dependency of ``kubernetes``)
with client-certificate auth read from a kubeconfig.
"""

from __future__ import annotations

import base64
import json
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import urllib3
import yaml

Obj = dict[str, Any]
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


class KubeError(Exception):
    """A non-2xx answer; ``status`` is the HTTP code, the message the API's own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _file(entry: Mapping[str, Any], key: str, tmp: Path) -> str | None:
    if entry.get(key):
        return str(entry[key])
    data = entry.get(f"{key}-data")
    if not data:
        return None
    path = tmp / key
    path.write_bytes(base64.b64decode(data))
    return str(path)


class Kube:
    """``request`` / ``watch`` against the cluster of a kubeconfig's current context."""

    def __init__(self, kubeconfig: Path, pool_size: int = 32) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        context_name = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"]
                       if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        tmp = Path(tempfile.mkdtemp(prefix="modelyard-kube-"))
        self.server: str = cluster["server"].rstrip("/")
        self._headers = {"Accept": "application/json"}
        if user.get("token"):
            self._headers["Authorization"] = f"Bearer {user['token']}"
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, block=False,
            ca_certs=_file(cluster, "certificate-authority", tmp),
            cert_file=_file(user, "client-certificate", tmp),
            key_file=_file(user, "client-key", tmp),
        )

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return url

    def request(
        self, method: str, path: str, body: Any = None, *, query: Mapping[str, Any] | None = None,
        content_type: str = "application/json", timeout: float = 30.0,
    ) -> Obj:
        """One API call; returns the decoded JSON answer or raises :class:`KubeError`."""
        headers = dict(self._headers)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        response = self._pool.request(
            method, self._url(path, query), body=data, headers=headers, timeout=timeout)
        text = response.data.decode(errors="replace")
        if response.status >= 300:
            try:
                message = str(json.loads(text).get("message", text))
            except ValueError:
                message = text
            raise KubeError(response.status, message)
        loaded: Obj = json.loads(text) if text else {}
        return loaded

    def get(self, path: str, **query: Any) -> Obj | None:
        """GET, or None on 404."""
        try:
            return self.request("GET", path, query=query)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def watch(self, path: str, resource_version: str, timeout: int = 30,
              **query: Any) -> Iterator[Obj]:
        """Yield watch events (``type``, ``object``) until the server closes the stream."""
        params = dict(query, watch="1", resourceVersion=resource_version,
                      timeoutSeconds=str(timeout), allowWatchBookmarks="true")
        response = self._pool.request(
            "GET", self._url(path, params), headers=self._headers, preload_content=False,
            timeout=urllib3.Timeout(connect=5.0, read=timeout + 10.0))
        try:
            if response.status >= 300:
                raise KubeError(response.status, response.data.decode(errors="replace"))
            buffer = b""
            for chunk in response.stream(65536):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event: Obj = json.loads(line)
                        yield event
        finally:
            response.release_conn()
