"""The Argo CD health checks agree with the operator: every phase and reason the code can write
maps to an Argo CD status (never Unknown), and statuses built by the operator's own pure
functions (endpoint_status, training_status.job_phase, registry resolve) read as a person would expect:
ready pods Healthy, unschedulable or crashing pods Degraded with the real message, a stale
status Progressing."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard import api
from modelyard.builders import endpoint_status, training_status
from modelyard.registry import resolve

from . import argo_lua, emitted

NOW = "2026-01-01T00:00:00Z"
# Where each phase must land whatever its reason; other phases depend on the reason.
FIXED = {
    "ModelEndpoint": {
        "Ready": "Healthy",
        "Progressing": "Progressing",
        "Degraded": "Degraded",
        "Failed": "Degraded",
    },
    "TrainingJob": {"Succeeded": "Healthy", "Running": "Progressing", "Failed": "Degraded"},
    "ModelEntry": {"Valid": "Healthy", "Invalid": "Degraded"},
}


def _obj(kind: str, status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ml", "generation": generation},
        "spec": {"model": "qwen2-5-0-5b-instruct", "replicas": 2},
    }
    if status is not None:
        obj["status"] = status
    return obj


def _all_pairs() -> list[Any]:
    return [
        pytest.param(kind, phase, reason, id=f"{kind}-{phase}-{reason}")
        for kind in argo_lua.KINDS
        for phase, reason in sorted(emitted.pairs(kind))
    ]


def test_every_phase_the_api_allows_is_one_the_code_writes() -> None:
    for kind in argo_lua.KINDS:
        assert {phase for phase, _ in emitted.pairs(kind)} == emitted.PHASES[kind], kind


@pytest.mark.parametrize(("kind", "phase", "reason"), _all_pairs())
def test_every_emitted_phase_and_reason_has_an_argo_status(
    kind: str, phase: str, reason: str, lua: Any
) -> None:
    status = {"phase": phase, "reason": reason, "message": "what happened", "observedGeneration": 4}
    got = lua.health(kind, _obj(kind, status, generation=4))
    assert got.status in argo_lua.ARGO_STATUSES - {"Unknown", "Missing"}, got
    assert got.status == FIXED[kind].get(phase, got.status), (phase, reason, got)
    assert got.message, got
    stale = lua.health(kind, _obj(kind, status, generation=5))
    assert (stale.status, stale.message) == (
        "Progressing",
        "Waiting for the operator to observe generation 5",
    )


# --- ModelEndpoint statuses as the controller writes them --------------------------------------


def _deployment(ready: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "readyReplicas": ready, "updatedReplicas": ready},
    }


def _ready_pod() -> dict[str, Any]:
    return {"metadata": {"name": "ready"}, "status": {"phase": "Running"}}


def _unschedulable_pod(message: str) -> dict[str, Any]:
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    return {"metadata": {"name": "waiting"}, "status": {"phase": "Pending", "conditions": [condition]}}


def _crashing_pod(message: str) -> dict[str, Any]:
    container = {
        "name": "runtime",
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "message": message}},
    }
    return {
        "metadata": {"name": "crashing"},
        "status": {"phase": "Running", "containerStatuses": [container]},
    }


def _endpoint_status(observed: endpoint_status.Observed, generation: int) -> dict[str, Any]:
    """What controllers/model_endpoint.reconcile writes for ``observed``."""
    return endpoint_status.status(observed, generation, NOW)


GPU_MESSAGE = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
LOAD_FAILURE = "OSError: no config.json in /models/qwen"
ENDPOINT_CASES = {
    "all ready": ((2, _deployment(2), [_ready_pod(), _ready_pod()]), "Healthy", "2/2 replicas ready"),
    "starting": ((2, _deployment(1), [_ready_pod(), {"metadata": {}, "status": {}}]), "Progressing", "1/2"),
    "unschedulable": ((1, _deployment(0), [_unschedulable_pod(GPU_MESSAGE)]), "Degraded", GPU_MESSAGE),
    "half unschedulable": (
        (2, _deployment(1), [_ready_pod(), _unschedulable_pod(GPU_MESSAGE)]),
        "Degraded",
        GPU_MESSAGE,
    ),
    "crashing": ((1, _deployment(0), [_crashing_pod(LOAD_FAILURE)]), "Degraded", LOAD_FAILURE),
    "half crashing": (
        (2, _deployment(1), [_ready_pod(), _crashing_pod(LOAD_FAILURE)]),
        "Degraded",
        "ready 1/2",
    ),
    "scaled to zero": ((0, _deployment(0), []), "Suspended", "replicas is 0"),
    "no deployment yet": ((1, None, []), "Progressing", "being created"),
}


@pytest.mark.parametrize("case", ENDPOINT_CASES)
def test_endpoint_health_from_the_operators_status(case: str, lua: Any) -> None:
    (desired, deployment, pods), expected, fragment = ENDPOINT_CASES[case]
    observed = endpoint_status.observe(desired, deployment, pods)
    got = lua.health("ModelEndpoint", _obj("ModelEndpoint", _endpoint_status(observed, 3), generation=3))
    assert got.status == expected, (observed, got)
    assert fragment in got.message and observed.reason in got.message, got
    newer = lua.health("ModelEndpoint", _obj("ModelEndpoint", _endpoint_status(observed, 3), generation=4))
    assert newer.status == "Progressing"


# --- TrainingJob -----------------------------------------------------------------------------


def _job(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "support-bot"}, "status": status}


def _failed_trainer(message: str) -> dict[str, Any]:
    terminated = {"exitCode": 2, "message": message}
    return {
        "metadata": {"creationTimestamp": NOW},
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"name": "trainer", "state": {"terminated": terminated}}],
        },
    }


BAD_LINE = "dataset line 3: messages[0].content must be a string (format chat)"
JOB_CASES = {
    "not created": ((None, []), "Progressing", "being created"),
    "waiting for a pod": ((_job(), []), "Progressing", "waiting for the trainer pod"),
    "unschedulable": ((_job(), [_unschedulable_pod(GPU_MESSAGE)]), "Degraded", GPU_MESSAGE),
    "running": ((_job(active=1), []), "Progressing", "Running"),
    "complete": (
        (_job(conditions=[{"type": "Complete", "status": "True"}]), []),
        "Healthy",
        "Training finished",
    ),
    "bad dataset": (
        (
            _job(conditions=[{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}]),
            [_failed_trainer(BAD_LINE)],
        ),
        "Degraded",
        f"PodFailurePolicy: exit code 2: {BAD_LINE}",
    ),
    "out of retries": (
        (
            _job(
                conditions=[
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                    }
                ]
            ),
            [],
        ),
        "Degraded",
        "BackoffLimitExceeded: Job has reached the specified backoff limit",
    ),
}


@pytest.mark.parametrize("case", JOB_CASES)
def test_training_job_health_from_the_operators_status(case: str, lua: Any) -> None:
    (job, pods), expected, fragment = JOB_CASES[case]
    phase, reason, message = training_status.job_phase(job, pods)
    status = {"phase": phase, "reason": reason, "message": message, "observedGeneration": 1}
    got = lua.health("TrainingJob", _obj("TrainingJob", status))
    assert got.status == expected, (phase, reason, got)
    assert fragment in got.message, got


def test_running_training_job_shows_its_progress(lua: Any) -> None:
    progress = training_status.progress_fields(
        {"step": 30, "totalSteps": 60, "loss": 0.5, "etaSeconds": 12, "x": 1}
    )
    status = {
        "phase": "Running",
        "reason": "Running",
        "message": "",
        "observedGeneration": 1,
        "progress": progress,
    }
    got = lua.health("TrainingJob", _obj("TrainingJob", status))
    assert (got.status, got.message) == ("Progressing", "Running: step 30/60, loss 0.500, ETA 12 s")


# --- ModelEntry ------------------------------------------------------------------------------


def _entry_status(entry: api.ModelEntry, generation: int) -> dict[str, Any]:
    """What controllers/model_entry.reconcile writes for ``entry`` (no ConfigMap)."""
    result = resolve.resolve(entry)
    return {
        "phase": "Valid" if result.ok else "Invalid",
        "reason": result.reason,
        "servedName": result.served_name,
        "architecture": result.architecture,
        "category": result.category,
        "endpoints": [{"namespace": "ml", "name": "chat-stable", "ready": True}],
        "observedGeneration": generation,
    }


def test_entry_health_from_the_registrys_resolution(lua: Any) -> None:
    spec = {"source": {"repo": "Qwen/Qwen2.5-0.5B-Instruct"}, "architecture": "Qwen2ForCausalLM"}
    good = api.ModelEntry.model_validate({"metadata": {"name": "qwen"}, "spec": spec})
    got = lua.health("ModelEntry", _obj("ModelEntry", _entry_status(good, 2), generation=2))
    assert got.status == "Healthy"
    assert (
        got.message
        == "Valid: served as Qwen/Qwen2.5-0.5B-Instruct (text-llm, Qwen2ForCausalLM); 1/1 endpoints ready"
    )
    bad_spec = {
        **spec,
        "category": "embedding",
        "runtime": {"pooling": "mean"},
        "capabilities": {"vision": True},
    }
    bad = api.ModelEntry.model_validate({"metadata": {"name": "qwen"}, "spec": bad_spec})
    status = _entry_status(bad, 2)
    assert status["phase"] == "Invalid"
    got = lua.health("ModelEntry", _obj("ModelEntry", status, generation=2))
    assert (got.status, got.message) == ("Degraded", f"Invalid: {status['reason']}")


@pytest.mark.parametrize(
    ("loss", "shown"),
    [(1.23456, "1.235"), (0.05, "0.050"), (2, "2.000"), (0.0004, "0.000"), (12.3456789, "12.346")],
)
def test_loss_is_shown_with_three_decimals_without_string_format(loss: float, shown: str, lua: Any) -> None:
    status = {"phase": "Running", "reason": "Running", "observedGeneration": 1,
              "progress": {"step": 1, "totalSteps": 2, "loss": loss}}  # fmt: skip
    assert (
        lua.health("TrainingJob", _obj("TrainingJob", status)).message == f"Running: step 1/2, loss {shown}"
    )


def test_scripts_use_no_library_argo_cd_leaves_out() -> None:
    for kind in argo_lua.KINDS:
        code = "\n".join(line.split("--")[0] for line in argo_lua.script(kind).splitlines())
        for name in ("string.", "math.", "os.", "io.", "require", ":sub(", ":format(", ":find(", ":match("):
            assert name not in code, f"{kind}/health.lua uses {name}"
