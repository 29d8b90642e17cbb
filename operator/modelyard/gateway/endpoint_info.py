"""Route facts read from cluster objects: EndpointSlices into pod URLs, Secrets into text, and
one ModelEndpoint (with its ModelEntry) into the :class:`~.routes.EndpointInfo` the route table
is built from.

Pure reads of already-parsed objects; :mod:`.kube_discovery` owns the watches, their caches and
the served-name ownership, and calls these for the objects each change touches.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from modelyard import api
from modelyard.api import wire
from modelyard.gateway import discovery, kube, readiness, routes

log = logging.getLogger(__name__)

# Phases in which an endpoint's ready pods serve (the EndpointSlices say which pods are ready).
SERVING_PHASES = frozenset({"Ready", "Degraded", "Progressing"})

UpstreamKey = Callable[[api.base.SecretKeyRef | None, str], tuple[str | None, str | None]]
"""(ref, the endpoint's namespace) -> (the key, None), or (None, ``namespace/name``) of a Secret
the gateway may not read."""


def slice_urls(obj: dict[str, Any]) -> tuple[str | None, list[str]]:
    """An EndpointSlice's ``namespace/endpoint`` (None: not an endpoint's) and its routable pod URLs
    (none without a port named ``http``)."""
    endpoint, pods = slice_pods(obj)
    return endpoint, [url for _, url in pods]


def slice_pods(obj: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
    """Like :func:`slice_urls`, each URL with its pod's name (``targetRef``; empty if none)."""
    meta = obj.get("metadata") or {}
    endpoint = (meta.get("labels") or {}).get(wire.ENDPOINT)
    if not endpoint:
        return None, []
    ports = obj.get("ports") or ()
    port = next((p.get("port") for p in ports if p.get("name") == wire.HTTP_PORT), None)
    pods: list[tuple[str, str]] = []
    for ep in (obj.get("endpoints") or ()) if port else ():
        if not readiness.routable_address(ep):
            continue
        pod = str((ep.get("targetRef") or {}).get("name") or "")
        for address in ep.get("addresses") or ():
            host = f"[{address}]" if ":" in address else address
            pods.append((pod, f"http://{host}:{port}"))
    return f"{meta.get('namespace')}/{endpoint}", pods


class PodIndex:
    """``namespace/endpoint`` -> the URLs of its routable pods, kept current one EndpointSlice at
    a time: an endpoint's slices in name order (so every gateway replica lists them alike), each
    slice's pods in the order the API server gives."""

    def __init__(self) -> None:
        self._endpoint: dict[str, str] = {}
        self._slices: dict[str, dict[str, list[tuple[str, str]]]] = {}

    def reset(self, slices: Mapping[str, dict[str, Any]]) -> None:
        self._endpoint, self._slices = {}, {}
        for key, obj in slices.items():
            self.update(key, obj)

    def update(self, key: str, obj: dict[str, Any] | None) -> set[str]:
        """Take the slice ``key`` as it is now (None: deleted); the endpoints whose pods it touched."""
        endpoint, urls = slice_pods(obj) if obj is not None else (None, [])
        touched = set()
        before = self._endpoint.pop(key, None)
        if before is not None:
            group = self._slices[before]
            del group[key]
            if not group:
                del self._slices[before]
            touched.add(before)
        if endpoint is not None:
            self._endpoint[key] = endpoint
            self._slices.setdefault(endpoint, {})[key] = urls
            touched.add(endpoint)
        return touched

    def urls(self, endpoint: str) -> list[str]:
        return [url for _, url in self.pods(endpoint)]

    def pods(self, endpoint: str) -> list[tuple[str, str]]:
        """(pod name, URL) of the endpoint's routable pods, in :meth:`urls` order."""
        group = self._slices.get(endpoint, {})
        return [pod for key in sorted(group) for pod in group[key]]


def info(
    key: str,
    obj: dict[str, Any],
    endpoint: api.ModelEndpoint,
    entry: api.ModelEntry | None,
    served: str,
    fallback: tuple[str, ...],
    pods: dict[str, list[str]],
    upstream_key: UpstreamKey,
) -> tuple[routes.EndpointInfo, str | None]:
    """The endpoint's routing facts, and the key Secret it needs but may not read (or None)."""
    spec, status = endpoint.spec, endpoint.status or api.model_endpoint.ModelEndpointStatus()
    engine = status.engine or spec.engine
    if engine is None and entry is not None and entry.spec.runtime is not None:
        engine = entry.spec.runtime.engine
    if engine != "upstream":
        targets = tuple(discovery.pod_target(key, url) for url in pods.get(key, ()))
        hold, down = readiness.hold_state(obj, spec.replicas, status)
        serving = status.phase in SERVING_PHASES or (hold and down is None)
        routing = discovery.routing_of(spec.routing)
        return routes.EndpointInfo(
            key, served, spec.weight, serving, fallback, targets, None, hold, down, routing
        ), None
    spec_up = entry.spec.upstream if entry is not None else None
    if spec_up is None:
        return routes.EndpointInfo(
            key, served, spec.weight, status.phase == "Ready", fallback, (), None
        ), None
    api_key, refused = upstream_key(spec_up.api_key_secret_ref, endpoint.namespace or "")
    upstream = routes.Upstream(
        model=spec_up.model, api_key=api_key, headers=tuple(sorted((spec_up.headers or {}).items()))
    )
    targets = (discovery.upstream_target(key, spec_up.base_url),)
    serving = status.phase == "Ready" and refused is None
    return routes.EndpointInfo(key, served, spec.weight, serving, fallback, targets, upstream), refused


def adapter_infos(
    base: routes.EndpointInfo,
    endpoint: api.ModelEndpoint,
    pods: list[tuple[str, str]],
    allowed: Callable[[str], bool],
) -> tuple[routes.EndpointInfo, ...]:
    """One info per live adapter of a pod endpoint (``status.adapters``), under the adapter's
    served name: the base's pods that have it loaded, its weight, fallbacks and hold; a
    PrefixHash routing keyed by the adapter's name, so one adapter's requests concentrate on
    few pods while those stay under the load bound. Adapters the namespace may not serve
    (``allowed``) and adapters on no pod (unless the endpoint holds requests) are left out."""
    status = endpoint.status
    if base.upstream is not None or status is None or not status.adapters:
        return ()
    found = []
    for adapter in status.adapters:
        loaded = set(adapter.pods or ())
        if adapter.name == base.served_name or not allowed(adapter.name) or not (loaded or base.hold):
            continue
        targets = tuple(discovery.pod_target(base.name, url) for pod, url in pods if pod and pod in loaded)
        found.append(
            dataclasses.replace(
                base,
                served_name=adapter.name,
                targets=targets,
                routing=routes.Routing("PrefixHash", load_factor=base.routing.load_factor, key=adapter.name),
            )
        )
    return tuple(found)


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    """A Secret's ``data`` (decoded) and ``stringData``; a value that is no UTF-8 text is left out."""
    data: dict[str, str] = {}
    for name, value in (secret.get("data") or {}).items():
        try:
            data[name] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            log.warning("secret %s: key %s is not UTF-8 text; ignored", kube.object_key(secret), name)
    for name, value in (secret.get("stringData") or {}).items():
        data[name] = str(value)
    return data
