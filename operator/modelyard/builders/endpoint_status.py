"""What a ModelEndpoint's status should say, from its Deployment and pods (pure).

The phase a person sees, and the real reason when pods do not come up:

    Pending      no pod scheduled yet (the scheduler's message when it cannot place one),
                 or the entry is missing / invalid, or replicas is 0
    Progressing  pods are starting or rolling, none failing
    Ready        every desired replica is ready with the current spec
    Degraded     some replicas serve, others fail (crash loop, unschedulable, load failure)
    Failed       nothing serves and a pod fails (CrashLoopBackOff with its last message,
                 exit before ready, image or config errors)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

# Waiting reasons that mean the container will not come up by itself.
_FAILING_WAITING = {
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "RunContainerError",
}


@dataclasses.dataclass(frozen=True)
class Observed:
    """The phase, its reason and message, and replica counts."""

    phase: str
    reason: str
    message: str
    replicas: int
    ready_replicas: int


_FINISHED = ("Succeeded", "Failed")


def _failure(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when a container of the pod is failing."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        terminated = (status.get("lastState") or {}).get("terminated") or (status.get("state") or {}).get(
            "terminated"
        )
        if waiting.get("reason") in _FAILING_WAITING or (terminated and status.get("restartCount", 0) > 0):
            reason = waiting.get("reason") or "ContainerFailed"
            detail = ""
            if terminated:
                detail = (terminated.get("message") or "").strip() or terminated.get("reason", "")
                code = terminated.get("exitCode")
                detail = f"exit code {code}: {detail}" if code is not None else detail
            message = detail or waiting.get("message") or reason
            restarts = status.get("restartCount", 0)
            return reason, f"container {status.get('name')} (restarts {restarts}): {message}"[:1024]
    if pod.get("status", {}).get("phase") == "Failed":
        return "PodFailed", pod["status"].get("message") or pod["status"].get("reason") or "pod failed"
    return None


def unschedulable_message(pod: dict[str, Any]) -> str | None:
    for condition in pod.get("status", {}).get("conditions") or []:
        scheduled = (condition.get("type"), condition.get("status"), condition.get("reason"))
        if scheduled == ("PodScheduled", "False", "Unschedulable"):
            return str(condition.get("message") or "no node fits the pod")
    return None


def observe(desired: int, deployment: dict[str, Any] | None, pods: Sequence[dict[str, Any]]) -> Observed:
    """The endpoint's phase from its Deployment and the pods of its current template."""
    if desired == 0:
        return Observed("Pending", "ScaledToZero", "replicas is 0", 0, 0)
    if deployment is None:
        return Observed("Pending", "Creating", "the Deployment is being created", 0, 0)
    status = deployment.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    generation_seen = status.get("observedGeneration", 0) >= deployment.get("metadata", {}).get(
        "generation", 0
    )
    current = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
    # A pod that has finished (evicted, its node shut down) stays listed until it is collected,
    # but its ReplicaSet has already replaced it: only when nothing replaced it yet does it count.
    live = [p for p in current if p.get("status", {}).get("phase") not in _FINISHED]
    finished = [p for p in current if p.get("status", {}).get("phase") in _FINISHED]
    failures = [f for f in (_failure(p) for p in live or finished) if f]
    unschedulable = [m for m in (unschedulable_message(p) for p in live) if m]
    if failures:
        reason, message = failures[0]
        return Observed("Degraded" if ready else "Failed", reason, message, desired, ready)
    if unschedulable:
        message = f"Unschedulable: {unschedulable[0]}"
        return Observed("Degraded" if ready else "Pending", "Unschedulable", message, desired, ready)
    if ready >= desired and updated >= desired and generation_seen and len(live) <= desired:
        return Observed("Ready", "Available", f"{ready}/{desired} replicas ready", desired, ready)
    if not live:
        return Observed("Pending", "Creating", "waiting for pods to be created", desired, ready)
    return Observed("Progressing", "Starting", f"{ready}/{desired} replicas ready", desired, ready)


def conditions(
    observed: Observed, generation: int, now: str, previous: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Available / Progressing / Degraded, keeping lastTransitionTime when a status holds."""
    before = {c.get("type"): c for c in previous}
    wanted = {
        "Available": observed.ready_replicas > 0,
        "Progressing": observed.phase in ("Progressing", "Pending"),
        "Degraded": observed.phase in ("Degraded", "Failed"),
    }
    out = []
    for kind, value in wanted.items():
        status = "True" if value else "False"
        old = before.get(kind)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else now
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": observed.reason,
                "message": observed.message,
                "lastTransitionTime": since,
                "observedGeneration": generation,
            }
        )
    return out


def status(
    observed: Observed, generation: int, now: str, previous: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """The endpoint's ``status`` for ``observed`` (without the url/servedName/engine extras)."""
    return {
        "phase": observed.phase,
        "reason": observed.reason,
        "message": observed.message,
        "replicas": observed.replicas,
        "readyReplicas": observed.ready_replicas,
        "ready": f"{observed.ready_replicas}/{observed.replicas}",
        "observedGeneration": generation,
        "conditions": conditions(observed, generation, now, previous),
    }
