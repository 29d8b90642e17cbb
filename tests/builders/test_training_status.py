"""A TrainingJob's phase and progress, read from its batch Job and pods as the API server reports
them (plain dicts)."""

from __future__ import annotations

import json

from modelyard.builders import training_status


def test_phase_from_the_job() -> None:
    assert training_status.job_phase(None)[0] == "Pending"
    assert training_status.job_phase({"status": {"active": 1}})[0] == "Running"
    stuck = {
        "status": {
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "pvc"}
            ]
        }
    }
    assert training_status.job_phase({"status": {"active": 1}}, [stuck]) == (
        "Pending",
        "Unschedulable",
        "Unschedulable: pvc",
    )
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert training_status.job_phase(done)[0] == "Succeeded"
    failed = {
        "status": {
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many"}
            ]
        }
    }
    pod = {
        "metadata": {"creationTimestamp": "2026"},
        "status": {
            "containerStatuses": [{"state": {"terminated": {"exitCode": 2, "message": "line 7: not JSON"}}}]
        },
    }
    assert training_status.job_phase(failed, [pod]) == (
        "Failed",
        "BackoffLimitExceeded",
        "exit code 2: line 7: not JSON",
    )


def _pod(name: str, created: str, phase: str, ip: str | None = None, terminated: object = None) -> dict:
    status: dict = {"phase": phase, "podIP": ip}
    if terminated is not None:
        status["containerStatuses"] = [{"name": "trainer", "state": {"terminated": terminated}}]
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def test_progress_comes_from_the_newest_running_pod_then_its_termination_message() -> None:
    failed = _pod("a", "2026-01-01T00:00:00Z", "Failed", terminated={"exitCode": 137})
    running = _pod("b", "2026-01-01T00:01:00Z", "Running", ip="10.0.0.7")
    assert training_status.progress_url([failed, running]) == "http://10.0.0.7:8001/progress"
    assert training_status.progress_url([failed]) is None
    message = json.dumps({"progress": {"step": 40, "totalSteps": 40, "loss": 0.5, "extra": 1}})
    done = _pod("b", "2026-01-01T00:01:00Z", "Succeeded", terminated={"exitCode": 0, "message": message})
    assert training_status.final_progress([failed, done]) == {"step": 40, "totalSteps": 40, "loss": 0.5}
    assert training_status.final_progress([failed]) is None
