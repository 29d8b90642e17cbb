"""Kubernetes Events on endpoints (:mod:`modelyard.controllers.events`): posted by the operator's
own client from any reconcile, whichever watch woke it (``kopf.event`` posted only from code
that kopf's handlers started); a failure to post is logged, never raised. That ``kubectl get
events`` shows them on a real cluster: tests/controllers/test_unschedulable_status.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelyard.controllers import events

META = {"name": "chat", "namespace": "team", "uid": "u1", "resourceVersion": "7"}
ENDPOINT = {"apiVersion": "modelyard.io/v1alpha1", "kind": "ModelEndpoint", "metadata": META}


class Kube:
    def __init__(self, fail: bool = False) -> None:
        self.created: list[dict[str, Any]] = []
        self.fail = fail

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("API server away")
        self.created.append(obj)
        return obj


def test_an_event_is_posted_from_a_plain_task_on_the_object() -> None:
    kube = Kube()

    async def main() -> None:
        poster = events.Poster(kube)  # type: ignore[arg-type]
        await asyncio.create_task(asyncio.sleep(0))  # a task kopf never started
        poster.post(ENDPOINT, "Warning", "Unschedulable", "Pending -> Pending: " + "x" * 2000)
        await poster.drain()

    asyncio.run(main())
    (posted,) = kube.created
    assert posted["involvedObject"] == {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        **META,
    }
    assert posted["metadata"] == {"namespace": "team", "generateName": "chat."}
    assert (posted["type"], posted["reason"]) == ("Warning", "Unschedulable")
    assert len(posted["message"]) == events.MESSAGE_LIMIT
    assert posted["source"] == {"component": events.COMPONENT} and posted["count"] == 1


def test_a_failure_to_post_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        poster = events.Poster(Kube(fail=True))  # type: ignore[arg-type]
        poster.post(ENDPOINT, "Normal", "Available", "New -> Ready")
        await poster.drain()

    asyncio.run(main())
    assert "could not post an event" in caplog.text and "New -> Ready" in caplog.text
