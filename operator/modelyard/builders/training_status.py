"""A TrainingJob as its batch Job and pods show it (pure): the phase, reason and message the
status carries, where the running trainer serves its progress, and the progress a finished one
left in its termination message. The Job itself is :mod:`.training`'s.

=========  ==================  ==========================================================
phase      reason              when
=========  ==================  ==========================================================
Pending    ``Creating``        no Job yet
Succeeded  ``Completed``       the Job's ``Complete`` condition
Failed     the Job's reason    its ``Failed`` condition (``BackoffLimitExceeded``, ...);
                               the message is the last container's exit code and message
Pending    ``Unschedulable``   a pod the scheduler cannot place (why, from the scheduler)
Running    ``Running``         a pod is active
Pending    ``Starting``        otherwise
=========  ==================  ==========================================================
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelyard.api import wire
from modelyard.builders import endpoint_status


def job_phase(job: dict[str, Any] | None, pods: Sequence[dict[str, Any]] = ()) -> tuple[str, str, str]:
    """(phase, reason, message) of a TrainingJob from its batch Job and pods."""
    if job is None:
        return "Pending", "Creating", "the Job is being created"
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "Succeeded", "Completed", "training finished"
        if condition.get("type") == "Failed":
            detail = _last_termination(pods) or condition.get("message") or ""
            return "Failed", condition.get("reason") or "Failed", detail
    waiting = [m for m in (endpoint_status.unschedulable_message(p) for p in pods) if m]
    if waiting:
        return "Pending", "Unschedulable", f"Unschedulable: {waiting[0]}"
    if status.get("active"):
        return "Running", "Running", f"{status.get('failed', 0)} failed attempt(s) so far"
    return "Pending", "Starting", "waiting for the trainer pod"


def _last_termination(pods: Sequence[dict[str, Any]]) -> str | None:
    for pod in sorted(pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp", ""), reverse=True):
        for status in pod.get("status", {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated.get("exitCode"):
                message = (terminated.get("message") or "").strip()
                return (
                    f"exit code {terminated['exitCode']}: {message}"
                    if message
                    else f"exit code {terminated['exitCode']}"
                )
    return None


def _newest(pods: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp", ""), reverse=True)


def progress_url(pods: Sequence[dict[str, Any]]) -> str | None:
    """Where the running trainer serves its progress: the newest Running pod with an IP."""
    for pod in _newest(pods):
        status = pod.get("status") or {}
        if status.get("phase") == "Running" and status.get("podIP"):
            return f"http://{status['podIP']}:{wire.PROGRESS_PORT}{wire.PROGRESS_PATH}"
    return None


def final_progress(pods: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The progress a trainer left in its termination message when it exited 0."""
    for pod in _newest(pods):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated.get("exitCode") != 0 or not terminated.get("message"):
                continue
            try:
                found = json.loads(terminated["message"]).get("progress")
            except (ValueError, AttributeError):
                continue
            if isinstance(found, dict):
                return progress_fields(found)
    return None


_PROGRESS_KEYS = ("step", "totalSteps", "epoch", "loss", "learningRate", "etaSeconds", "percent", "updated")


def progress_fields(found: dict[str, Any]) -> dict[str, Any]:
    """The keys of status.progress, from what the trainer reported (anything else dropped)."""
    return {k: found[k] for k in _PROGRESS_KEYS if found.get(k) is not None}
