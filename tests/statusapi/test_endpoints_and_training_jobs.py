"""GET /api/v1/endpoints (readiness, traffic share per served name) and /api/v1/trainingjobs
(phase, progress)."""

from __future__ import annotations

from statusapi.conftest import Api


def test_endpoints_with_phase_replicas_url_and_share(api: Api) -> None:
    status, body = api.get("/api/v1/endpoints")
    assert status == 200 and body["total"] == 4
    rows = {e["name"]: e for e in body["data"]}
    a = rows["qwen-a"]
    assert a["served_name"] == "Qwen/Qwen3-4B-Instruct-2507"
    assert a["model_id"] == "Qwen/Qwen3-4B-Instruct-2507"
    assert (a["phase"], a["ready"], a["replicas"], a["ready_replicas"]) == ("Ready", True, 2, 2)
    assert a["url"] == "http://qwen-a.prod.svc:8000"
    # The gateway routes only to Ready endpoints: 300 of 400 and 100 of 400; qwen-c gets none yet.
    assert (a["share"], rows["qwen-b"]["share"], rows["qwen-c"]["share"]) == (0.75, 0.25, 0.0)
    whisper = rows["whisper"]
    assert whisper["phase"] == "Pending" and whisper["share"] == 0.0
    assert whisper["reason"] == "Unschedulable" and "nvidia.com/gpu" in whisper["message"]


def test_endpoint_filters(api: Api) -> None:
    _, speech = api.get("/api/v1/endpoints", namespace="speech")
    assert [e["name"] for e in speech["data"]] == ["whisper"]
    _, ready = api.get("/api/v1/endpoints", phase="Ready")
    assert {e["name"] for e in ready["data"]} == {"qwen-a", "qwen-b"}
    _, served = api.get("/api/v1/endpoints", served_name="openai/whisper-tiny")
    assert served["total"] == 1


def test_an_endpoint_without_status_is_unknown(api: Api, view: object) -> None:
    from modelyard import statusapi
    from statusapi.conftest import endpoint

    assert isinstance(view, statusapi.Cache)
    view.upsert(endpoint("fresh", "bge-m3", namespace="new", phase=None))
    _, body = api.get("/api/v1/endpoints", namespace="new")
    assert body["data"][0]["phase"] == "Unknown" and body["data"][0]["served_name"] == "BAAI/bge-m3"


def test_training_jobs_with_progress(api: Api) -> None:
    status, body = api.get("/api/v1/trainingjobs")
    assert status == 200 and body["total"] == 2
    jobs = {j["name"]: j for j in body["data"]}
    running = jobs["ft-tiny"]
    assert running["phase"] == "Running" and running["method"] == "qlora"
    assert running["progress"]["step"] == 30 and running["progress"]["total_steps"] == 120
    assert running["progress"]["percent"] == 25.0 and running["progress"]["loss"] == 1.2345
    assert jobs["ft-done"]["progress"]["percent"] == 100.0
    _, only = api.get("/api/v1/trainingjobs", phase="Succeeded")
    assert [j["name"] for j in only["data"]] == ["ft-done"]
