"""Objects the API server accepted but that surprise the status API (a spec this version cannot
parse, odd status values) are left out or shown as far as they make sense: never a 500."""

from __future__ import annotations

from modelyard import statusapi
from statusapi.conftest import GROUP, Api, endpoint


def test_an_entry_that_does_not_parse_is_left_out(api: Api, view: statusapi.Cache) -> None:
    view.upsert({"apiVersion": GROUP, "kind": "ModelEntry", "metadata": {"name": "broken"}, "spec": {}})
    status, body = api.get("/api/v1/registry/models")
    assert status == 200 and body["total"] == 23
    status, body = api.get("/api/v1/registry/models/broken")
    assert status == 404


def test_an_entry_with_a_status_from_another_version_keeps_its_spec(api: Api, view: statusapi.Cache) -> None:
    entry = view.get("ModelEntry", None, "bge-m3")
    assert entry is not None
    view.upsert({**entry, "status": {"phase": "Valid", "somethingNew": True}})
    status, body = api.get("/api/v1/registry/models/BAAI/bge-m3")
    assert status == 200 and body["data"]["entry"] == "bge-m3"


def test_odd_endpoint_and_job_values(api: Api, view: statusapi.Cache) -> None:
    odd = endpoint("odd", "no-such-entry", namespace="odd")
    odd["spec"]["weight"] = "heavy"
    odd["spec"]["resources"] = {"gpus": "two"}
    odd["status"]["readyReplicas"] = None
    view.upsert(odd)
    view.upsert(
        {
            "apiVersion": GROUP,
            "kind": "TrainingJob",
            "metadata": {"name": "odd", "namespace": "odd"},
            "spec": {"model": "x"},
            "status": {"phase": "Running", "progress": {"step": "many", "totalSteps": 0}},
        }
    )
    status, body = api.get("/api/v1/endpoints", namespace="odd")
    assert status == 200
    row = body["data"][0]
    assert (row["served_name"], row["model_id"], row["weight"], row["ready_replicas"]) == (
        "no-such-entry", None, 100, 0,
    )  # fmt: skip
    status, body = api.get("/api/v1/trainingjobs", namespace="odd")
    assert status == 200 and body["data"][0]["progress"]["percent"] is None
