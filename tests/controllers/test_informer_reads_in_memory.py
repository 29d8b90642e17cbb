"""The informer's rules (:mod:`modelyard.controllers.informer`), in memory: a miss is a GET, our
own write counts until the watch catches up, and only a change of the object itself (not of its
status) is a change. kopf's indices are stood in for by plain dicts of lists."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fakecluster import FakeCluster

from modelyard.controllers import cluster, informer


def _endpoint(version: int, phase: str = "Progressing", uid: str = "u1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "chat", "namespace": "team", "uid": uid, "resourceVersion": str(version),
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"model": "qwen3", **spec},
        "status": {"phase": phase},
    }  # fmt: skip


def _attached(*bodies: dict[str, Any]) -> tuple[informer.Informer, dict[Any, list[dict[str, Any]]]]:
    index: dict[Any, list[dict[str, Any]]] = {}
    for body in bodies:
        index.setdefault(informer.key_of(cluster.MODEL_ENDPOINT, body), []).append(informer.trim(body))
    found = informer.Informer()
    found.own(cluster.MODEL_ENDPOINT, index)
    return found, index


def test_before_the_indices_are_attached_every_read_is_a_get() -> None:
    fake = FakeCluster(_endpoint(1))
    reads = informer.Informer()
    found = asyncio.run(reads.read(fake, cluster.MODEL_ENDPOINT, "chat", "team"))
    assert found is not None and found["metadata"]["uid"] == "u1"
    assert reads.misses == 1 and reads.pods("team", "chat") is None


def test_a_hit_needs_no_request_and_a_miss_is_read() -> None:
    reads, _ = _attached(_endpoint(5))
    fake = FakeCluster()
    hit = asyncio.run(reads.read(fake, cluster.MODEL_ENDPOINT, "chat", "team"))
    assert hit is not None and "managedFields" not in hit["metadata"] and reads.misses == 0
    assert asyncio.run(reads.read(fake, cluster.MODEL_ENDPOINT, "other", "team")) is None
    assert reads.misses == 1


def test_our_write_counts_until_the_watch_has_it() -> None:
    reads, index = _attached(_endpoint(5))
    reads.wrote(_endpoint(7, "Ready"))
    assert reads.cached(cluster.MODEL_ENDPOINT, "chat", "team")["status"]["phase"] == "Ready"  # type: ignore[index]
    index[("team", "chat")] = [informer.trim(_endpoint(9, "Degraded"))]  # a later change, watched
    assert reads.cached(cluster.MODEL_ENDPOINT, "chat", "team")["status"]["phase"] == "Degraded"  # type: ignore[index]


def test_a_write_never_outlives_the_object() -> None:
    reads, index = _attached(_endpoint(5))
    reads.wrote(_endpoint(7, "Ready"))
    del index[("team", "chat")]  # deleted: the watch dropped it
    assert reads.cached(cluster.MODEL_ENDPOINT, "chat", "team") is None
    index[("team", "chat")] = [informer.trim(_endpoint(3, uid="u2"))]  # a new object of that name
    reads.wrote(_endpoint(7, "Ready"))
    assert reads.cached(cluster.MODEL_ENDPOINT, "chat", "team")["metadata"]["uid"] == "u2"  # type: ignore[index]


def test_a_status_change_is_not_a_change_of_the_object() -> None:
    reads = informer.Informer()
    assert reads.changed("modelendpoints", _endpoint(1), deleted=False)  # first sight
    assert not reads.changed("modelendpoints", _endpoint(2, "Ready"), deleted=False)
    assert reads.changed("modelendpoints", _endpoint(3, "Ready", replicas=2), deleted=False)
    labelled = _endpoint(4, "Ready", replicas=2)
    labelled["metadata"]["labels"] = {"team": "a"}
    assert reads.changed("modelendpoints", labelled, deleted=False)
    assert reads.changed("modelendpoints", labelled, deleted=True)
    assert reads.changed("modelendpoints", labelled, deleted=False)  # seen again after its end


def test_pods_come_from_their_endpoints_index() -> None:
    labels = {"modelyard.io/endpoint": "chat"}
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}, "status": {"phase": "Running"},
           "metadata": {"name": "chat-1", "namespace": "team", "labels": labels}}  # fmt: skip
    reads = informer.Informer()
    key = informer.key_of(cluster.POD, pod)
    reads.own(cluster.POD, {key: [informer.trim(pod)]})
    assert reads.pods("team", "chat") == [{k: v for k, v in pod.items() if k != "spec"}]
    assert reads.pods("team", "other") == []


def test_training_jobs_are_indexed_by_the_endpoint_they_serve_on() -> None:
    def job(name: str, serve_on: str | None) -> dict[str, Any]:
        output: dict[str, Any] = {"uri": "pvc://adapters/x"}
        if serve_on is not None:
            output["serveOn"] = {"endpoint": serve_on}
        return {"apiVersion": "modelyard.io/v1alpha1", "kind": "TrainingJob",
                "metadata": {"name": name, "namespace": "team"}, "spec": {"output": output}}  # fmt: skip

    assert informer.key_of(cluster.TRAINING_JOB, job("plain", None)) is None  # not indexed
    serving = job("tune", "chat")
    reads = informer.Informer()
    assert reads.serving_jobs("team", "chat") is None  # not attached: the caller lists
    key = informer.key_of(cluster.TRAINING_JOB, serving)
    reads.own(cluster.TRAINING_JOB, {key: [informer.trim(serving)]})
    assert key == ("team", "chat")
    assert reads.serving_jobs("team", "chat") == [serving]
    assert reads.serving_jobs("team", "other") == []
    reads.wrote({**serving, "status": {"servedAt": "now"}})  # a list index keeps no writes
    assert reads.serving_jobs("team", "chat") == [serving]


def test_every_endpoint_of_the_index_at_its_latest_version() -> None:
    reads, _ = _attached(_endpoint(3), _endpoint(5, "Ready"))
    assert [e["metadata"]["resourceVersion"] for e in reads.every(cluster.MODEL_ENDPOINT) or []] == ["5"]
    assert reads.every(cluster.POD) is None  # not attached


def test_children_are_kept_without_what_no_reconcile_reads() -> None:
    meta = {"name": "chat", "namespace": "team", "uid": "d1", "generation": 2, "managedFields": [{}],
            "ownerReferences": [{"uid": "e1", "controller": True}]}  # fmt: skip
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                  "spec": {"template": {}}, "status": {"readyReplicas": 1}}  # fmt: skip
    kept = informer.trim(deployment)
    assert kept == {"apiVersion": "apps/v1", "kind": "Deployment", "status": {"readyReplicas": 1},
                    "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}  # fmt: skip
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {}, "status": {}}
    assert set(informer.trim(service)) == {"apiVersion", "kind", "metadata"}


def test_kept_objects_share_their_keys_and_short_strings() -> None:
    """Each watch event is parsed afresh; the indices keep one copy of each repeated string."""
    status = {"conditions": [{"type": "Ready", "status": "True"}], "message": "x" * 100}
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}, "status": status,
           "metadata": {"name": "chat-0", "namespace": "team", "managedFields": [{}]}}  # fmt: skip
    first, second = (informer.trim(json.loads(json.dumps(pod))) for _ in range(2))
    meta = {"name": "chat-0", "namespace": "team"}
    kept = {"apiVersion": "v1", "kind": "Pod", "status": status, "metadata": meta}
    assert first == second == kept
    condition_a, condition_b = first["status"]["conditions"][0], second["status"]["conditions"][0]
    assert next(iter(condition_a)) is next(iter(condition_b))  # one key object, not one per event
    assert condition_a["status"] is condition_b["status"]
    assert first["metadata"]["namespace"] is second["metadata"]["namespace"]
    assert first["status"]["message"] is not second["status"]["message"]  # long strings: not interned


def test_a_child_we_created_is_known_until_the_watch_reports_it_or_its_deletion() -> None:
    """After a POST the next reconcile must not POST again (a 409, a GET and a patch); an endpoint
    or entry the index lacks is still unknown (it may be gone)."""
    reads, index = _attached()
    meta = {"name": "chat", "namespace": "team", "uid": "d1", "resourceVersion": "7"}
    created = {"apiVersion": "apps/v1", "kind": "Deployment", "status": {}, "metadata": meta}
    reads.own(cluster.DEPLOYMENT, {})
    reads.wrote(created)
    assert reads.cached(cluster.DEPLOYMENT, "chat", "team") == informer.trim(created)
    reads.forget(created)  # its DELETED event
    assert reads.cached(cluster.DEPLOYMENT, "chat", "team") is None
    reads.wrote(_endpoint(3))
    index.clear()
    assert reads.cached(cluster.MODEL_ENDPOINT, "chat", "team") is None


def test_a_sweep_drops_the_writes_the_watch_has_reported_and_keeps_the_rest() -> None:
    """An endpoint's last write (Ready) is read by no later reconcile: the sweep, not a read,
    drops its copy once the watch has it, so the fleet's memory holds one copy per object."""
    reads, index = _attached(_endpoint(5))
    reads.wrote(_endpoint(7, "Ready"))
    assert reads.sweep() == 1  # the watch has not reported 7 yet: still ours
    assert reads.cached(cluster.MODEL_ENDPOINT, "chat", "team")["status"]["phase"] == "Ready"  # type: ignore[index]
    index[("team", "chat")] = [informer.trim(_endpoint(7, "Ready"))]
    assert reads.sweep() == 0
    reads.wrote(_endpoint(9, "Degraded"))
    del index[("team", "chat")]  # gone since
    assert reads.sweep() == 0


def test_a_sweep_keeps_a_child_created_but_not_reported_yet() -> None:
    reads = informer.Informer()
    reads.own(cluster.DEPLOYMENT, {})
    meta = {"name": "chat", "namespace": "team", "uid": "d1", "resourceVersion": "3"}
    created = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta}
    reads.wrote(created)
    assert reads.sweep() == 1 and reads.cached(cluster.DEPLOYMENT, "chat", "team") is not None


def test_the_autoscalers_round_reads_only_the_autoscaled_endpoints() -> None:
    """An endpoint is read by the round while its spec or status has ``autoscaling`` (a status
    left to clear counts), as the watch has it now; not once both are gone, nor once deleted."""
    reads, index = _attached(_endpoint(5))
    assert informer.Informer().autoscaled() is None  # not attached: the round lists
    scaled = _endpoint(6, autoscaling={"maxReplicas": 2})
    reads.track_autoscaling(_endpoint(5), deleted=False)
    assert reads.autoscaled() == []
    reads.track_autoscaling(scaled, deleted=False)
    index[("team", "chat")] = [scaled]
    assert reads.autoscaled() == [scaled]
    clearing = {**_endpoint(7), "status": {"autoscaling": {"desired": 2}}}
    reads.track_autoscaling(clearing, deleted=False)
    assert len(reads.autoscaled() or []) == 1
    reads.track_autoscaling(_endpoint(8), deleted=False)
    assert reads.autoscaled() == []
    reads.track_autoscaling(scaled, deleted=True)
    assert reads.autoscaled() == []
