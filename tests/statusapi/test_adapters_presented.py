"""The status API shows each endpoint's live adapters and when a serveOn job's adapter first
answered, as the operator wrote them (pure presentation of stored objects)."""

from __future__ import annotations

from modelyard.statusapi import present


def test_an_endpoint_lists_its_adapters_and_a_job_its_served_at() -> None:
    endpoint = {
        "metadata": {"namespace": "ml", "name": "chat"},
        "spec": {"model": "llama"},
        "status": {
            "phase": "Ready",
            "adapters": [
                {"name": "sql", "pods": ["chat-0"], "ready": True},
                {
                    "name": "bad",
                    "pods": [],
                    "ready": False,
                    "reason": "AdapterLoadFailed",
                    "message": "rank 128",
                },
                {"pods": "not a list"},
            ],
        },
    }
    (summary,) = present.endpoints([endpoint], {}, {})
    assert [(a.name, a.pods, a.ready, a.reason, a.message) for a in summary.adapters] == [
        ("sql", ["chat-0"], True, None, None),
        ("bad", [], False, "AdapterLoadFailed", "rank 128"),
    ]
    job = {
        "metadata": {"namespace": "ml", "name": "tune"},
        "spec": {"model": "llama"},
        "status": {"phase": "Succeeded", "servedAt": "2026-01-01T00:00:00Z"},
    }
    assert present.training_job(job).served_at == "2026-01-01T00:00:00Z"
