"""Route facts read from cluster objects: EndpointSlices into pod URLs, Secrets into text, and
one ModelEndpoint (with its ModelEntry) into the :class:`~.routes.EndpointInfo` the route table
is built from.

Pure reads of already-parsed objects; :mod:`.kube_discovery` owns the watches, their caches and
the served-name ownership, and calls these on every rebuild.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
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


def pod_urls(slices: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """``namespace/endpoint`` -> the URLs of its routable pods, from the EndpointSlices."""
    found: dict[str, list[str]] = {}
    for obj in slices:
        meta = obj.get("metadata") or {}
        endpoint = (meta.get("labels") or {}).get(wire.ENDPOINT)
        ports = obj.get("ports") or ()
        port = next((p.get("port") for p in ports if p.get("name") == wire.HTTP_PORT), None)
        if not endpoint or not port:
            continue
        urls = found.setdefault(f"{meta.get('namespace')}/{endpoint}", [])
        for ep in obj.get("endpoints") or ():
            if not readiness.routable_address(ep):
                continue
            for address in ep.get("addresses") or ():
                host = f"[{address}]" if ":" in address else address
                urls.append(f"http://{host}:{port}")
    return found


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
