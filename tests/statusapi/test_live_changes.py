"""The view as the operator drives it: upsert/delete bump the change counter (identical updates
do not), the registry follows, and an event-stream client is woken by a change, even when the
change comes from another thread (the heartbeat is an hour here, so only the wake-up can deliver
it)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import requests

from modelyard import statusapi
from statusapi.conftest import Api, Loop, endpoint


def test_counter_moves_only_on_real_changes() -> None:
    view = statusapi.Cache()
    obj = endpoint("a", "bge-m3")
    assert view.upsert(obj) and view.version == 1
    assert not view.upsert(dict(obj))
    assert view.version == 1
    assert view.delete("modelendpoints", "prod", "a") and view.version == 2
    assert not view.delete("ModelEndpoint", "prod", "a")
    assert view.changed_since(0) == ["ModelEndpoint"]
    assert "managedFields" not in (view.objects("ModelEndpoint") or [{"metadata": {}}])[0]["metadata"]


def test_registry_follows_entry_changes(api: Api, view: statusapi.Cache) -> None:
    entry = next(o for o in view.objects("ModelEntry") if o["metadata"]["name"] == "bge-m3")
    renamed = {
        **entry,
        "metadata": {"name": "bge-m3-copy"},
        "spec": {**entry["spec"], "servedName": "team/bge"},
    }
    view.upsert(renamed)
    status, body = api.get("/api/v1/registry/models/team/bge")
    assert status == 200 and body["data"]["entry"] == "bge-m3-copy"
    view.delete("ModelEntry", None, "bge-m3-copy")
    status, _ = api.get("/api/v1/registry/models/team/bge")
    assert status == 404


def test_event_stream_is_woken_by_a_change_from_another_thread(
    view: statusapi.Cache, serve: Callable[..., Api]
) -> None:
    api = serve(view, heartbeat_s=3600)  # nothing but the change can end the stream's wait
    lines: list[str] = []
    said_hello, got_change = threading.Event(), threading.Event()

    def listen() -> None:
        with requests.get(api.base + "/api/v1/events", stream=True, timeout=60) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for line in response.iter_lines(decode_unicode=True):
                lines.append(line)
                if line == "event: hello":
                    said_hello.set()
                if line == "event: change":
                    got_change.set()
                    return

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert said_hello.wait(30), lines
    version = view.version
    view.upsert(endpoint("qwen-c", "qwen3-4b-instruct-2507", weight=100, phase="Ready"))  # another thread
    assert got_change.wait(30), lines
    reader.join(timeout=30)
    assert lines[-1] == "event: change" and f"id: {version + 1}" in lines, lines


def test_streams_end_cleanly_when_the_app_shuts_down(view: statusapi.Cache) -> None:
    loop = Loop()
    base = loop.serve(statusapi.create_app(statusapi.StatusApiSettings(heartbeat_s=3600), view))
    response = requests.get(base + "/api/v1/events", stream=True, timeout=30)
    lines = response.iter_lines(decode_unicode=True)
    assert next(lines) == "retry: 1000"
    loop.close()
    # The app ended the stream itself: the rest reads to a whole end of the chunked body, where a
    # stream cut by the server's shutdown timeout would raise ChunkedEncodingError here.
    rest = list(lines)
    response.close()
    assert "event: hello" in rest


def test_watch_events_as_kopf_delivers_them() -> None:
    view = statusapi.Cache()
    obj = endpoint("a", "bge-m3")
    assert view.apply_event({"type": None, "object": obj})  # kopf's initial listing
    obj["spec"]["weight"] = 7  # the watcher reusing its dict does not reach into the view
    assert view.get("ModelEndpoint", "prod", "a")["spec"]["weight"] == 100  # type: ignore[index]
    assert view.apply_event({"type": "MODIFIED", "object": {**obj, "kind": ""}}, kind="ModelEndpoint")
    assert view.get("ModelEndpoint", "prod", "a")["spec"]["weight"] == 7  # type: ignore[index]
    assert view.apply_event({"type": "DELETED", "object": obj})
    assert view.objects("ModelEndpoint") == []


def test_a_changed_entry_is_shown_changed(api: Api, view: statusapi.Cache) -> None:
    _, before = api.get("/api/v1/registry/models", q="bge-m3")
    entry = view.get("ModelEntry", None, "bge-m3")
    assert entry is not None and before["total"] == 1
    view.upsert({**entry, "spec": {**entry["spec"], "description": "now with more vectors", "tags": ["new"]}})
    _, after = api.get("/api/v1/registry/models", tag="new")
    assert [m["description"] for m in after["data"]] == ["now with more vectors"]
    _, unchanged = api.get("/api/v1/registry/models/Qwen/Qwen3-4B-Instruct-2507")
    assert unchanged["data"]["entry"] == "qwen3-4b-instruct-2507"


def test_kopf_bodies_are_copied_into_plain_dicts() -> None:
    from kopf._cogs.structs import bodies

    raw = endpoint("k", "bge-m3")
    view = statusapi.Cache()
    view.upsert(bodies.Body(raw))
    raw["spec"]["weight"] = 1
    stored = view.get("ModelEndpoint", "prod", "k")
    assert type(stored) is dict and type(stored["spec"]) is dict  # type: ignore[index]
    assert stored["spec"]["weight"] == 100  # type: ignore[index]
