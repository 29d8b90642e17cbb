"""One autoscaler round at a time against the in-memory cluster and real HTTP gateways' text:
it finds the gateways through the metrics Service's EndpointSlices, patches spec.replicas and
status.autoscaling, and never scales down on a round in which a gateway did not answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from fakecluster import FakeCluster, make_context

import kit
from modelyard.controllers import autoscaler, cluster, informer


class Gateway(BaseHTTPRequestHandler):
    text = ""

    def do_GET(self) -> None:
        body = self.text.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def gateway() -> Iterator[str]:
    Gateway.text = 'modelyard_gateway_endpoint_demand{namespace="ml",endpoint="chat"} 0\n'
    with kit.http_server(Gateway) as url:
        yield url


def _endpoint(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "chat", "namespace": "ml"},
        "spec": {
            "model": "m",
            "replicas": replicas,
            "autoscaling": {"minReplicas": 0, "maxReplicas": 4, "scaleDownDelaySeconds": 0},
        },
        "status": {"readyReplicas": replicas},
    }


def _slice(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "gw-abc",
            "namespace": "gw",
            "labels": {"kubernetes.io/service-name": "gw-metrics"},
        },
        "ports": [{"name": "metrics", "port": parts.port}],
        "endpoints": [{"addresses": [parts.hostname], "conditions": {"ready": True}}],
    }


def _round(scaler: autoscaler.Autoscaler) -> None:
    async def one() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            await scaler.round(session)

    asyncio.run(one())


def _endpoint_now(fake: FakeCluster) -> dict[str, Any]:
    found = fake.objects[(*cluster.MODEL_ENDPOINT, "ml", "chat")]
    return found


def test_gateways_are_found_through_the_endpoint_slices(gateway: str) -> None:
    fake = FakeCluster(_endpoint(1), _slice(gateway))
    ctx = make_context(fake)
    scaler = autoscaler.Autoscaler(ctx, autoscaler.Options(service="gw/gw-metrics"))
    Gateway.text = 'modelyard_gateway_endpoint_demand{namespace="ml",endpoint="chat"} 20\n'
    _round(scaler)
    body = _endpoint_now(fake)
    assert body["spec"]["replicas"] == 3
    assert body["status"]["autoscaling"]["demand"] == 20
    assert body["status"]["autoscaling"]["lastScaleReason"] == "demand 20 > 8 x 1 ready: 1 -> 3"
    assert kit.metric(ctx.metrics.render().decode(), "modelyard_operator_gateways_scraped") == 1


def test_a_gateway_that_does_not_answer_blocks_scale_down(gateway: str) -> None:
    dead = f"http://127.0.0.1:{kit.free_port()}/metrics"
    fake = FakeCluster(_endpoint(2))
    ctx = make_context(fake)
    both = autoscaler.Autoscaler(ctx, autoscaler.Options(urls=(f"{gateway}/metrics", dead)))
    _round(both)
    _round(both)
    assert _endpoint_now(fake)["spec"]["replicas"] == 2
    assert kit.metric(ctx.metrics.render().decode(), "modelyard_operator_gateway_scrape_errors_total") == 2
    alone = autoscaler.Autoscaler(ctx, autoscaler.Options(urls=(f"{gateway}/metrics",)))
    _round(alone)
    _round(alone)
    assert _endpoint_now(fake)["spec"]["replicas"] == 0


def test_removing_autoscaling_clears_its_status(gateway: str) -> None:
    fake = FakeCluster(_endpoint(1))
    ctx = make_context(fake)
    scaler = autoscaler.Autoscaler(ctx, autoscaler.Options(urls=(f"{gateway}/metrics",)))
    _round(scaler)
    assert "autoscaling" in _endpoint_now(fake)["status"]
    body = _endpoint_now(fake)
    del body["spec"]["autoscaling"]
    fake.put(body)
    _round(scaler)
    assert "autoscaling" not in _endpoint_now(fake)["status"]
    assert kit.metric(ctx.metrics.render().decode(), "modelyard_operator_autoscale_desired_replicas") == 0


def test_a_round_reads_the_endpoints_from_the_watch_index(gateway: str) -> None:
    fake = FakeCluster(_endpoint(1))
    ctx = make_context(fake)
    plain = {**_endpoint(1), "metadata": {"name": "plain", "namespace": "ml"}, "spec": {"model": "m"}}
    index = {informer.key_of(cluster.MODEL_ENDPOINT, body): [body] for body in (_endpoint(1), plain)}
    ctx.informer.own(cluster.MODEL_ENDPOINT, index)
    for body in (_endpoint(1), plain):  # as the endpoints' watch handler does
        ctx.informer.track_autoscaling(body, deleted=False)
    listed: list[Any] = []
    listing = fake.list

    async def counted(kind: cluster.Kind, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        listed.append(kind)
        return await listing(kind, *args, **kwargs)

    fake.list = counted  # type: ignore[method-assign]
    Gateway.text = 'modelyard_gateway_endpoint_demand{namespace="ml",endpoint="chat"} 20\n'
    _round(autoscaler.Autoscaler(ctx, autoscaler.Options(urls=(f"{gateway}/metrics",))))
    assert _endpoint_now(fake)["spec"]["replicas"] == 3
    assert cluster.MODEL_ENDPOINT not in listed
