"""The operator's access to the Kubernetes API: server-side apply, get, list, delete and
status patches, run on worker threads so kopf's event loop never blocks.

Built on the ``kubernetes`` dynamic client; in a pod it uses the service account (found as
:mod:`modelyard.incluster` says), outside the current kubeconfig (or ``--kubeconfig``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import re
from collections.abc import Sequence
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.config import incluster_config
from kubernetes.dynamic import exceptions

from modelyard import incluster
from modelyard.api import wire
from modelyard.builders import labels

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

Kind = tuple[str, str]
STATUS_THREADS = 4
CALL_THREADS = 24
"""Threads for every other call (reads, applies, deletes, entry status): asyncio's default pool
has cpu + 4 (six on two cores), and with two calls per endpoint in flight it held creation to a
few endpoints at a time whatever ``context.CREATING`` said."""
CONNECTIONS = CALL_THREADS + STATUS_THREADS
"""Kept-alive connections to the API server: one per thread (the client's default, cpu x 5,
would open and drop a TLS connection for each call beyond it)."""


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config when running in a pod, else the kubeconfig."""
    configuration = client.Configuration()
    configuration.connection_pool_maxsize = CONNECTIONS
    account = incluster.detect() if kubeconfig is None else None
    if account is not None:
        incluster_config.InClusterConfigLoader(
            token_filename=str(account.token_file), cert_filename=str(account.ca_file), try_refresh_token=True
        ).load_and_set(configuration)
        return client.ApiClient(configuration)
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return client.ApiClient(configuration)


_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def apply_patch(obj: dict[str, Any]) -> bytes:
    """``obj`` as an apply patch. The API server reads one as YAML, which takes neither JSON's
    surrogate-pair escapes (``\\ud83d\\ude00``) nor raw C1 controls or line separators: an
    emoji in a served name failed every apply of the endpoint's Deployment. So: UTF-8, with
    those few characters escaped (``\\u0085`` means the same in JSON and YAML)."""
    text = json.dumps(obj, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


class Cluster:
    """Async facade over the dynamic client; objects in and out are plain dicts."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._dynamic = dynamic.DynamicClient(api)
        self._calls = concurrent.futures.ThreadPoolExecutor(CALL_THREADS, "kube-call")
        self._status_lane = concurrent.futures.ThreadPoolExecutor(STATUS_THREADS, "status-patch")
        """Endpoints' status patches run on threads of their own: telling that an endpoint is
        Ready never queues behind a backlog of applies, reads and entry writes."""

    @functools.cache  # noqa: B019 - one Cluster per process; resources never change
    def _resource(self, kind: Kind) -> Any:
        return self._dynamic.resources.get(api_version=kind[0], kind=kind[1])

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._calls, call)

    async def _status_call(self, kind: Kind, fn: Any, **kwargs: Any) -> Any:
        lane = self._status_lane if kind == MODEL_ENDPOINT else self._calls
        return await asyncio.get_running_loop().run_in_executor(lane, functools.partial(fn, **kwargs))

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            found = await self._call(self._resource(kind).get, name=name, namespace=namespace)
        except exceptions.NotFoundError:
            return None
        return dict(found.to_dict())

    async def list(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        found = await self._call(self._resource(kind).get, namespace=namespace, label_selector=label_selector)
        return [dict(item) for item in found.to_dict().get("items", [])]

    async def apply(
        self, obj: dict[str, Any], field_manager: str = labels.FIELD_MANAGER, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply as ``field_manager``, taking ownership of conflicts when ``force``
        (else a field another manager owns raises ``exceptions.ConflictError``)."""
        kind = (obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        applied = await self._call(
            self._dynamic.server_side_apply,
            self._resource(kind),
            body=apply_patch(obj),
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=field_manager,
            force_conflicts=force,
        )
        return dict(applied.to_dict())

    async def delete(
        self, kind: Kind, name: str, namespace: str | None = None, uid: str | None = None
    ) -> bool:
        """Delete; False when it does not exist or, given ``uid``, is no longer that object (the
        API server checks the uid precondition, so a same-named replacement is never deleted)."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            await self._call(self._resource(kind).delete, name=name, namespace=namespace, body=body)
        except (exceptions.NotFoundError, exceptions.ConflictError):
            return False
        return True

    async def patch_status(
        self, kind: Kind, name: str, namespace: str | None, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch the status subresource (None values delete fields); the object as
        patched, None when it does not exist."""
        resource = self._resource(kind)
        with contextlib.suppress(exceptions.NotFoundError):
            patched = await self._status_call(
                kind,
                self._dynamic.patch,
                resource=resource.status,
                body={"status": status},
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
            )
            return dict(patched.to_dict())
        return None

    async def merge_patch(self, kind: Kind, name: str, namespace: str | None, body: dict[str, Any]) -> bool:
        """JSON merge patch (lists are replaced whole); False when the object does not exist."""
        try:
            await self._call(
                self._dynamic.patch,
                self._resource(kind),
                body=body,
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
            )
        except exceptions.NotFoundError:
            return False
        return True

    async def json_patch(
        self, kind: Kind, name: str, namespace: str | None, operations: Sequence[dict[str, Any]]
    ) -> bool:
        """JSON patch (RFC 6902, ``test`` operations included); False when the object does not
        exist or a ``test`` fails."""
        try:
            await self._call(
                self._dynamic.patch,
                self._resource(kind),
                body=[*operations],
                name=name,
                namespace=namespace,
                content_type="application/json-patch+json",
            )
        except (exceptions.NotFoundError, exceptions.UnprocessibleEntityError, exceptions.ConflictError):
            return False
        return True

    async def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create (as the operator's field manager); None when it exists already."""
        kind = (obj["apiVersion"], obj["kind"])
        try:
            created = await self._call(
                self._resource(kind).create,
                body=obj,
                namespace=obj["metadata"].get("namespace"),
                field_manager=labels.FIELD_MANAGER,
            )
        except exceptions.ConflictError:
            return None
        return dict(created.to_dict())
