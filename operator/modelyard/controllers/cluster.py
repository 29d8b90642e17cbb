"""The operator's access to the Kubernetes API: server-side apply, get, list, delete and
status patches, as coroutines on kopf's event loop (aiohttp; answers are plain dicts).

Where the API server is and how to log in comes from :mod:`.credentials` (the pod's service
account, else the kubeconfig). Paths are built from a fixed table of the kinds the operator
touches (no discovery requests). Calls go over three lanes, each its own pool of kept-alive
connections, so one lane's backlog never delays another's: endpoints' status patches (telling
that an endpoint is Ready never queues behind a backlog of applies, reads and entry writes),
the Lease, and every other call. Each watch (:meth:`Cluster.stream`) holds a connection of
its own. Answers are decoded with msgspec (a watch's events too: they are most of the bytes).

Every answer of 400 or more raises a :class:`.kube_errors.ApiError` (the hierarchy is drawn
there). Transport failures raise ``aiohttp.ClientError`` (or ``TimeoutError``) unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import msgspec

from modelyard.api import wire
from modelyard.builders import labels
from modelyard.controllers import credentials, kube_errors

# (apiVersion, kind) of everything the operator touches.
DEPLOYMENT = ("apps/v1", "Deployment")
SERVICE = ("v1", "Service")
POD = ("v1", "Pod")
CONFIG_MAP = ("v1", "ConfigMap")
SECRET = ("v1", "Secret")
JOB = ("batch/v1", "Job")
NETWORK_POLICY = ("networking.k8s.io/v1", "NetworkPolicy")
INFERENCE_POOL = ("inference.networking.k8s.io/v1", "InferencePool")
MODEL_ENTRY = (wire.API_VERSION, "ModelEntry")
MODEL_ENDPOINT = (wire.API_VERSION, "ModelEndpoint")
TRAINING_JOB = (wire.API_VERSION, "TrainingJob")
LEASE = ("coordination.k8s.io/v1", "Lease")


_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def apply_patch(obj: dict[str, Any]) -> bytes:
    """``obj`` as an apply patch. The API server reads one as YAML, which takes neither JSON's
    surrogate-pair escapes (``\\ud83d\\ude00``) nor raw C1 controls or line separators: an
    emoji in a served name failed every apply of the endpoint's Deployment. So: UTF-8, with
    those few characters escaped (``\\u0085`` means the same in JSON and YAML)."""
    text = json.dumps(obj, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


PLURALS = {
    "ConfigMap": "configmaps",
    "Event": "events",
    "Deployment": "deployments",
    "EndpointSlice": "endpointslices",
    "InferencePool": "inferencepools",
    "Job": "jobs",
    "Lease": "leases",
    "ModelEndpoint": "modelendpoints",
    "ModelEntry": "modelentries",
    "NetworkPolicy": "networkpolicies",
    "Pod": "pods",
    "Secret": "secrets",
    "Service": "services",
    "TrainingJob": "trainingjobs",
    "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
}
"""The resource (plural) of each kind the operator touches: a path needs it."""

Kind = tuple[str, str]
CALL_CONNECTIONS = 24
"""Concurrent calls (reads, applies, deletes, entry status); more wait for a connection. The
thread pool this replaces had 24 threads: asyncio's default pool (cpu + 4, six on two cores)
held creation to a few endpoints at a time whatever ``context.CREATING`` said."""
STATUS_CONNECTIONS = 4
LEASE_CONNECTIONS = 1
CONNECTIONS = CALL_CONNECTIONS + STATUS_CONNECTIONS + LEASE_CONNECTIONS
"""Kept-alive connections to the API server, all lanes together."""
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
"""Per request: 10 s to connect, 60 s without a byte of the answer. No total: waiting for a
free connection of the lane is not a failure (the thread pool queued its calls unbounded too)."""
WATCH_READ_SECONDS = 420
"""A watch (:meth:`Cluster.stream`) may be silent until the server ends it (its ``timeoutSeconds``
is at most 360, :data:`.watches.WATCH_SECONDS`); longer than that without a byte, it is dead."""


def path(kind: Kind, name: str | None = None, namespace: str | None = None, subresource: str = "") -> str:
    """The API path of ``kind``'s collection (``name`` None) or of one object."""
    api_version, kind_name = kind
    try:
        plural = PLURALS[kind_name]
    except KeyError:
        raise KeyError(f"{kind_name}: not in cluster.PLURALS (add its resource name)") from None
    out = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace:
        out += f"/namespaces/{urllib.parse.quote(namespace, safe='')}"
    out += f"/{plural}"
    if name is not None:
        out += f"/{urllib.parse.quote(name, safe='')}"
    return out + (f"/{subresource}" if subresource else "")


def api_client(kubeconfig: str | None = None) -> credentials.Credentials:
    """In-cluster credentials when running in a pod, else the kubeconfig's."""
    return credentials.load(kubeconfig)


JSON = "application/json"
MERGE = "application/merge-patch+json"


class Cluster:
    """Async client of the API server; objects in and out are plain dicts."""

    def __init__(self, creds: credentials.Credentials) -> None:
        self.credentials = creds
        self._ssl = creds.ssl_context()
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session(self, lane: str) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # sessions belong to one loop (tests run several)
            self._sessions, self._loop = {}, loop
        session = self._sessions.get(lane)
        if session is None or session.closed:
            # watches: a connection each, as many as are open
            limit = {"status": STATUS_CONNECTIONS, "lease": LEASE_CONNECTIONS, "watch": 0}.get(
                lane, CALL_CONNECTIONS
            )
            connector = aiohttp.TCPConnector(
                ssl=self._ssl if self._ssl is not None else False, limit=limit, keepalive_timeout=60
            )
            timeout = (
                TIMEOUT
                if lane != "watch"
                else aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=WATCH_READ_SECONDS)
            )
            session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, skip_auto_headers=["User-Agent"]
            )
            self._sessions[lane] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": JSON, "User-Agent": "modelyard-operator"}
        auth = self.credentials.authorization()
        if auth is not None:
            headers["Authorization"] = auth
        return headers

    async def request(
        self,
        method: str,
        url_path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = JSON,
        lane: str = "calls",
    ) -> Any:
        """One call; the decoded answer, or :class:`.kube_errors.ApiError`."""
        headers = self._headers()
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else msgspec.json.encode(body)
            headers["Content-Type"] = content_type
        url = self.credentials.server + url_path
        async with self._session(lane).request(
            method, url, params=query, data=data, headers=headers
        ) as answer:
            return _decoded(answer.status, await answer.read())

    async def stream(self, url_path: str, query: dict[str, str]) -> AsyncIterator[bytes]:
        """A watch: each line of the answer as it comes (one JSON event each), on a connection
        of its own; ends when the server ends the answer."""
        url = self.credentials.server + url_path
        async with self._session("watch").get(url, params=query, headers=self._headers()) as answer:
            if answer.status >= 400:
                _decoded(answer.status, await answer.read())
            pending = bytearray()
            async for chunk in answer.content.iter_any():
                pending += chunk
                if b"\n" not in chunk:
                    continue
                *lines, rest = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield bytes(line)
                pending = bytearray(rest)
            if pending.strip():
                yield bytes(pending)

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self.request("GET", path(kind, name, namespace), lane=_lane(kind))
        except kube_errors.NotFoundError:
            return None
        return found

    async def list(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        found = await self.request("GET", path(kind, None, namespace), query=query, lane=_lane(kind))
        return list(found.get("items") or [])

    async def apply(
        self, obj: dict[str, Any], field_manager: str = labels.FIELD_MANAGER, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply as ``field_manager``, taking ownership of conflicts when ``force``
        (else a field another manager owns raises :class:`.kube_errors.ConflictError`)."""
        kind = (obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        query = {"fieldManager": field_manager, **({"force": "true"} if force else {})}
        applied: dict[str, Any] = await self.request(
            "PATCH", path(kind, meta["name"], meta.get("namespace")), query=query,
            body=apply_patch(obj), content_type="application/apply-patch+yaml",
        )  # fmt: skip
        return applied

    async def delete(
        self, kind: Kind, name: str, namespace: str | None = None, uid: str | None = None
    ) -> bool:
        """Delete; False when it does not exist or, given ``uid``, is no longer that object (the
        API server checks the uid precondition, so a same-named replacement is never deleted)."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", path(kind, name, namespace), body=body)
        except (kube_errors.NotFoundError, kube_errors.ConflictError):
            return False
        return True

    async def patch_status(
        self, kind: Kind, name: str, namespace: str | None, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch the status subresource (None values delete fields); the object as
        patched, None when it does not exist. An endpoint's go on the status lane."""
        lane = "status" if kind == MODEL_ENDPOINT else _lane(kind)
        try:
            patched: dict[str, Any] = await self.request(
                "PATCH", path(kind, name, namespace, "status"), body={"status": status},
                content_type=MERGE, lane=lane,
            )  # fmt: skip
        except kube_errors.NotFoundError:
            return None
        return patched

    async def merge_patch(self, kind: Kind, name: str, namespace: str | None, body: dict[str, Any]) -> bool:
        """JSON merge patch (lists are replaced whole); False when the object does not exist."""
        try:
            await self.request(
                "PATCH", path(kind, name, namespace), body=body, content_type=MERGE, lane=_lane(kind)
            )
        except kube_errors.NotFoundError:
            return False
        return True

    async def json_patch(
        self, kind: Kind, name: str, namespace: str | None, operations: Sequence[dict[str, Any]]
    ) -> bool:
        """JSON patch (RFC 6902, ``test`` operations included); False when the object does not
        exist or a ``test`` fails."""
        try:
            await self.request(
                "PATCH",
                path(kind, name, namespace),
                body=[*operations],
                content_type="application/json-patch+json",
            )
        except (kube_errors.NotFoundError, kube_errors.UnprocessibleEntityError, kube_errors.ConflictError):
            return False
        return True

    async def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create (as the operator's field manager); None when it exists already."""
        kind = (obj["apiVersion"], obj["kind"])
        try:
            created: dict[str, Any] = await self.request(
                "POST", path(kind, None, obj["metadata"].get("namespace")), body=obj,
                query={"fieldManager": labels.FIELD_MANAGER}, lane=_lane(kind),
            )  # fmt: skip
        except kube_errors.ConflictError:
            return None
        return created

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Replace (PUT; ``metadata.resourceVersion`` makes it conditional); None on a conflict."""
        kind = (obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        try:
            replaced: dict[str, Any] = await self.request(
                "PUT", path(kind, meta["name"], meta.get("namespace")), body=obj, lane=_lane(kind)
            )
        except kube_errors.ConflictError:
            return None
        return replaced


def _decoded(status: int, text: bytes) -> Any:
    """An answer's body (JSON, else text); raises :class:`.kube_errors.ApiError` from 400 on."""
    try:
        decoded = msgspec.json.decode(text) if text else None
    except msgspec.DecodeError:
        decoded = text.decode(errors="replace")
    if status >= 400:
        raise kube_errors.error(status, decoded)
    return decoded


def _lane(kind: Kind) -> str:
    return "lease" if kind == LEASE else "calls"
