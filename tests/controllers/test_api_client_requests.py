"""The operator's API client (:mod:`modelyard.controllers.cluster`) against a small fake API
server: the paths, methods and content types it sends, how answers map to exceptions, and
that an endpoint's status patch never waits behind a backlog of other calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import fakeapi
import pytest
from aiohttp import web

from modelyard.controllers import autoscaler, cluster, kube_errors, webhook

pytestmark = pytest.mark.timeout(60)

KINDS = [
    value
    for value in vars(cluster).values()
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)
] + [webhook.VALIDATING, autoscaler.ENDPOINT_SLICE]


def test_every_kind_the_operator_touches_has_a_path() -> None:
    assert len(KINDS) >= 14
    for kind in KINDS:
        assert cluster.path(kind, "x", "ns").endswith("/x")


def test_paths_of_core_and_group_kinds_objects_collections_and_subresources() -> None:
    assert cluster.path(cluster.POD, "p", "ns") == "/api/v1/namespaces/ns/pods/p"
    assert (
        cluster.path(cluster.NETWORK_POLICY, None, "ns")
        == "/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies"
    )
    assert cluster.path(cluster.MODEL_ENTRY) == "/apis/modelyard.io/v1alpha1/modelentries"
    assert cluster.path(cluster.MODEL_ENDPOINT, "e", "ns", "status") == (
        "/apis/modelyard.io/v1alpha1/namespaces/ns/modelendpoints/e/status"
    )
    assert cluster.path(webhook.VALIDATING, "modelyard.io") == (
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/modelyard.io"
    )


def _status(code: int, reason: str, name: str | None = "x") -> dict[str, Any]:
    details = {"name": name, "kind": "pods"} if name else {}
    return {"kind": "Status", "status": "Failure", "reason": reason, "code": code, "details": details}


@pytest.mark.parametrize(
    ("code", "body", "expected"),
    [
        (403, _status(403, "Forbidden"), kube_errors.ForbiddenError),
        (404, _status(404, "NotFound"), kube_errors.NotFoundError),
        (404, "404 page not found\n", kube_errors.ResourceNotFoundError),
        (404, _status(404, "NotFound", name=None), kube_errors.ResourceNotFoundError),
        (409, _status(409, "Conflict"), kube_errors.ConflictError),
        (422, _status(422, "Invalid"), kube_errors.UnprocessibleEntityError),
        (500, _status(500, "InternalError"), kube_errors.ApiError),
    ],
)
def test_answers_map_to_exceptions(code: int, body: Any, expected: type[kube_errors.ApiError]) -> None:
    found = kube_errors.error(code, body)
    assert type(found) is expected and found.status == code and found.body == body
    assert not isinstance(kube_errors.error(404, "page"), kube_errors.NotFoundError)  # never "object absent"


class FakeApi:
    """Records each request; answers from ``answers`` by (method, path), else echoes the body."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self.hold = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "type": request.headers.get("Content-Type"),
                "auth": request.headers.get("Authorization"),
                "body": raw,
            }
        )
        if request.path.startswith("/apis/apps/v1/namespaces/slow/"):
            await self.hold.wait()
        code, answer = self.answers.get((request.method, request.path), (200, None))
        if answer is None:
            answer = json.loads(raw) if raw else {"items": [{"metadata": {"name": "a"}}]}
        if isinstance(answer, str):
            return web.Response(status=code, text=answer)
        return web.json_response(answer, status=code)


Api = tuple[FakeApi, cluster.Cluster]


def run_against_fake(test: Callable[[FakeApi, cluster.Cluster], Awaitable[None]]) -> None:
    """Run ``test`` with a fake API server and a client of it (one event loop)."""

    async def main() -> None:
        fake = FakeApi()
        async with fakeapi.serving(fake.handle, token="t0k") as kube:
            try:
                await test(fake, kube)
            finally:
                fake.hold.set()  # a held request ends before the client closes

    asyncio.run(main())


def test_apply_is_a_forced_server_side_apply_as_the_field_manager() -> None:
    async def test(fake: FakeApi, kube: cluster.Cluster) -> None:
        obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}}
        assert await kube.apply(obj) == obj
        await kube.apply(obj, field_manager="other", force=False)
        first, second = fake.seen
        assert (first["method"], first["path"]) == ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d")
        assert first["type"] == "application/apply-patch+yaml" and first["auth"] == "Bearer t0k"
        assert first["query"] == {"fieldManager": "modelyard-operator", "force": "true"}
        assert second["query"] == {"fieldManager": "other"}

    run_against_fake(test)


def test_get_list_delete_create_and_patches() -> None:
    async def test(fake: FakeApi, kube: cluster.Cluster) -> None:
        fake.answers[("GET", "/api/v1/namespaces/ns/pods/gone")] = (404, _status(404, "NotFound", "gone"))
        assert await kube.get(cluster.POD, "gone", "ns") is None
        assert await kube.list(cluster.POD, "ns", "a=b") == [{"metadata": {"name": "a"}}]
        assert fake.seen[-1]["query"] == {"labelSelector": "a=b"}
        assert await kube.delete(cluster.POD, "p", "ns", uid="u1")
        assert json.loads(fake.seen[-1]["body"]) == {
            "propagationPolicy": "Background",
            "preconditions": {"uid": "u1"},
        }
        fake.answers[("DELETE", "/api/v1/namespaces/ns/pods/q")] = (409, _status(409, "Conflict", "q"))
        assert not await kube.delete(cluster.POD, "q", "ns", uid="old")
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}}
        fake.answers[("POST", "/api/v1/namespaces/ns/secrets")] = (409, _status(409, "AlreadyExists", "s"))
        assert await kube.create(secret) is None
        await kube.patch_status(cluster.MODEL_ENDPOINT, "e", "ns", {"phase": "Ready"})
        assert (fake.seen[-1]["path"], fake.seen[-1]["type"]) == (
            "/apis/modelyard.io/v1alpha1/namespaces/ns/modelendpoints/e/status",
            "application/merge-patch+json",
        )
        fake.answers[("PATCH", "/api/v1/namespaces/ns/pods/p")] = (422, _status(422, "Invalid", "p"))
        assert not await kube.json_patch(cluster.POD, "p", "ns", [{"op": "test", "path": "/a", "value": 1}])
        assert fake.seen[-1]["type"] == "application/json-patch+json"

    run_against_fake(test)


def test_a_kind_the_server_does_not_serve_raises_on_get() -> None:
    async def test(fake: FakeApi, kube: cluster.Cluster) -> None:
        fake.answers[("GET", "/apis/inference.networking.k8s.io/v1/namespaces/ns/inferencepools/p")] = (
            404,
            "404 page not found",
        )
        with pytest.raises(kube_errors.ResourceNotFoundError):
            await kube.get(cluster.INFERENCE_POOL, "p", "ns")

    run_against_fake(test)


def test_an_endpoints_status_patch_does_not_wait_behind_other_calls() -> None:
    async def test(fake: FakeApi, kube: cluster.Cluster) -> None:
        backlog = [asyncio.create_task(kube.get(cluster.DEPLOYMENT, f"d{i}", "slow")) for i in range(40)]
        while len(fake.seen) < cluster.CALL_CONNECTIONS:  # every call connection busy, the rest queued
            await asyncio.sleep(0.01)
        await asyncio.wait_for(kube.patch_status(cluster.MODEL_ENDPOINT, "e", "ns", {"phase": "Ready"}), 10)
        await asyncio.wait_for(kube.get(cluster.LEASE, "modelyard-operator", "ns"), 10)
        assert not any(task.done() for task in backlog)
        fake.hold.set()
        await asyncio.gather(*backlog)

    run_against_fake(test)
