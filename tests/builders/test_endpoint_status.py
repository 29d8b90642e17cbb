"""An endpoint's phase tells what is going on with its pods, with the real reason."""

from __future__ import annotations

from typing import Any

from modelyard.builders import endpoint_status


def _deployment(ready: int, updated: int | None = None) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "status": {
            "observedGeneration": 2,
            "readyReplicas": ready,
            "updatedReplicas": ready if updated is None else updated,
        },
    }


def _pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "status": status}


def test_all_ready_is_ready() -> None:
    seen = endpoint_status.observe(2, _deployment(2), [_pod(phase="Running"), _pod(phase="Running")])
    assert (seen.phase, seen.ready_replicas) == ("Ready", 2)


def test_unschedulable_pod_is_pending_with_the_scheduler_message() -> None:
    message = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    pod = _pod(
        phase="Pending",
        conditions=[
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
        ],
    )
    seen = endpoint_status.observe(1, _deployment(0), [pod])
    assert (seen.phase, seen.reason) == ("Pending", "Unschedulable")
    assert seen.message == f"Unschedulable: {message}"


def test_crash_loop_is_failed_with_the_last_termination_message() -> None:
    crashing = _pod(
        phase="Running",
        containerStatuses=[
            {
                "name": "runtime",
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {
                    "terminated": {"exitCode": 1, "message": "OSError: no config.json in /models/x"}
                },
            }
        ],
    )
    seen = endpoint_status.observe(1, _deployment(0), [crashing])
    assert (seen.phase, seen.reason) == ("Failed", "CrashLoopBackOff")
    assert "exit code 1: OSError: no config.json in /models/x" in seen.message
    degraded = endpoint_status.observe(2, _deployment(1), [crashing, _pod(phase="Running")])
    assert degraded.phase == "Degraded"


def test_starting_is_progressing_and_zero_replicas_is_pending() -> None:
    assert endpoint_status.observe(1, _deployment(0), [_pod(phase="Running")]).phase == "Progressing"
    assert endpoint_status.observe(0, _deployment(0), []).reason == "ScaledToZero"
    assert endpoint_status.observe(1, None, []).phase == "Pending"


def test_conditions_keep_transition_time_while_status_holds() -> None:
    seen = endpoint_status.observe(1, _deployment(1), [_pod(phase="Running")])
    first = endpoint_status.conditions(seen, 2, "t1")
    again = endpoint_status.conditions(seen, 2, "t2", first)
    assert [c["lastTransitionTime"] for c in again] == ["t1", "t1", "t1"]
    assert {c["type"]: c["status"] for c in again} == {
        "Available": "True",
        "Progressing": "False",
        "Degraded": "False",
    }


def test_finished_pods_that_were_replaced_do_not_hold_the_endpoint_back() -> None:
    """Evicted or shut-down pods linger until collected; their replacements decide the phase."""
    evicted = _pod(phase="Failed", reason="Evicted", message="The node was low on resource: memory.")
    completed = _pod(phase="Succeeded")
    seen = endpoint_status.observe(1, _deployment(1), [evicted, completed, _pod(phase="Running")])
    assert (seen.phase, seen.reason) == ("Ready", "Available")
    alone = endpoint_status.observe(1, _deployment(0), [evicted])
    assert (alone.phase, alone.reason) == ("Failed", "PodFailed")
    assert alone.message == "The node was low on resource: memory."


def test_the_status_written_carries_phase_counts_generation_and_conditions() -> None:
    seen = endpoint_status.observe(2, _deployment(1), [_pod(phase="Running"), _pod(phase="Pending")])
    written = endpoint_status.status(seen, 7, "2026-01-01T00:00:00Z")
    assert written["phase"] == "Progressing" and written["ready"] == "1/2"
    assert written["observedGeneration"] == 7
    assert {c["type"]: c["status"] for c in written["conditions"]} == {
        "Available": "True", "Progressing": "True", "Degraded": "False"}
