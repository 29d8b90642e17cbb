"""Which pods get requests and which endpoints hold them: pure reads of an EndpointSlice
endpoint's conditions and of a ModelEndpoint's spec and status (:mod:`.kube_discovery` applies
them to its watches; the rules are in docs/gateway.md#discovery)."""

from __future__ import annotations

from typing import Any

from modelyard import api

COMING_UP = frozenset({None, "Pending", "Progressing"})
"""Phases in which an endpoint with replicas is coming up: requests wait for its first ready pod.
None: a new endpoint's status is not written yet (the operator leaves a start's passing phases
unwritten for its first seconds, docs/operator.md)."""


def routable_address(endpoint: dict[str, Any]) -> bool:
    """An EndpointSlice endpoint that may get new requests: ``ready`` (which Kubernetes sets
    false for a terminating pod) and, in case a slice publishes not-ready addresses, neither
    terminating nor not ``serving``. A draining pod finishes what it has, gets nothing new."""
    conditions = endpoint.get("conditions") or {}
    return (
        conditions.get("ready") is True
        and conditions.get("terminating") is not True
        and conditions.get("serving") is not False
    )


def hold_state(
    obj: dict[str, Any], replicas: int, status: api.model_endpoint.ModelEndpointStatus
) -> tuple[bool, str | None]:
    """(requests wait for a ready pod, why the endpoint cannot come up or None) of a pod endpoint.

    ``spec.autoscaling`` is read from the object itself, so a gateway needs no newer API model
    to honour it."""
    autoscaled = bool((obj.get("spec") or {}).get("autoscaling"))
    coming_up = status.phase in COMING_UP and replicas > 0
    hold = autoscaled or status.reason == "ScaledToZero" or coming_up
    down = None
    if status.phase == "Failed" or status.reason == "Unschedulable":
        down = ": ".join(p for p in (status.reason or status.phase, status.message) if p)
    return hold, down
