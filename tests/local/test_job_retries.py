"""The real Job controller retries failing pods up to backoffLimit; the node agent reports
exit codes so it can tell failure from success."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def _job(name: str, code: int) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 1, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "none",
                            "command": ["python", "-c", f"import sys; sys.exit({code})"]}],
        }}},
    }


def _condition(job: dict[str, Any]) -> str | None:
    for condition in job.get("status", {}).get("conditions") or []:
        if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
            return str(condition["type"])
    return None


def test_failing_job_is_retried_then_failed_and_passing_job_completes(
    local_cluster: Any, namespace: str, wait: Any
) -> None:
    kube = local_cluster.kube
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    kube.request("POST", jobs, _job("fails", 1))
    kube.request("POST", jobs, _job("passes", 0))

    assert wait(lambda: _condition(kube.request("GET", f"{jobs}/passes")), 60,
                "job passes to finish") == "Complete"
    assert wait(lambda: _condition(kube.request("GET", f"{jobs}/fails")), 90,
                "job fails to finish") == "Failed"

    failed = kube.request("GET", f"{jobs}/fails")["status"]
    assert failed["failed"] == 2  # the first try plus backoffLimit=1 retry
    pods = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                        query={"labelSelector": "job-name=fails"})["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == 1 and terminated["reason"] == "Error"
