"""Every (kind, phase, reason) the operator can write into a status, read from its source, so
the Argo CD health checks and docs/operations.md are checked against the code rather than
against a list someone has to remember to update.

Constant reasons are found in the source (``Observed("Pending", "EntryNotFound", ...)``, tuples
``"Failed", "InvalidSpec", ...`` returned or assigned); reasons that come from Kubernetes are the
container waiting reasons the endpoint status treats as failures (``_FAILING_WAITING``) and the
batch Job's failure reasons, which the TrainingJob passes through.
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

from modelyard.api import model_endpoint, model_entry, training_job
from modelyard.builders import endpoint_status

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "modelyard"

PHASES = {
    "ModelEntry": set(typing.get_args(model_entry.EntryPhase)),
    "ModelEndpoint": set(typing.get_args(model_endpoint.EndpointPhase)),
    "TrainingJob": set(typing.get_args(training_job.TrainingPhase)),
}
SOURCES = {
    "ModelEndpoint": ("builders/endpoint_status.py", "controllers/model_endpoint.py"),
    "TrainingJob": ("builders/training_status.py", "builders/registration.py", "controllers/training_job.py"),
}
# Reasons of a failed batch Job (Kubernetes' JobFailed condition), copied into the TrainingJob.
JOB_FAILURE_REASONS = {"BackoffLimitExceeded", "DeadlineExceeded", "PodFailurePolicy"}
# endpoint_status._failure: a container that failed without a waiting reason, a Failed pod.
POD_FAILURE_REASONS = {"ContainerFailed", "PodFailed"}


def _strings(node: ast.expr) -> set[str]:
    """The strings an expression can be: a constant, or either branch of ``a if c else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        body, orelse = _strings(node.body), _strings(node.orelse)
        return body | orelse if body and orelse else set()
    return set()


def _constant_pairs(path: Path, phases: set[str]) -> set[tuple[str, str]]:
    """(phase, reason) of every call or tuple whose first two items are a phase and a reason."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        items: list[ast.expr] = []
        if isinstance(node, ast.Call):
            items = list(node.args)
        elif isinstance(node, ast.Tuple):
            items = list(node.elts)
        if len(items) >= 3:
            found |= {(p, r) for p in _strings(items[0]) & phases for r in _strings(items[1])}
    return found


def pairs(kind: str) -> set[tuple[str, str]]:
    """(phase, reason) pairs the operator writes for ``kind``."""
    if kind == "ModelEntry":
        return {("Valid", "Valid"), ("Invalid", "Invalid")}
    found: set[tuple[str, str]] = set()
    for relative in SOURCES[kind]:
        found |= _constant_pairs(PACKAGE / relative, PHASES[kind])
    if kind == "ModelEndpoint":
        for reason in endpoint_status._FAILING_WAITING | POD_FAILURE_REASONS:
            found |= {("Degraded", reason), ("Failed", reason)}
    else:
        found |= {("Failed", reason) for reason in JOB_FAILURE_REASONS}
    return found


def reasons(kind: str) -> set[str]:
    return {reason for _, reason in pairs(kind)}
