"""Metrics per app (own registry), usage tokens, health and readiness."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import openai

from kit import wait_for
from modelyard.gateway import app as gateway_app
from modelyard.gateway import discovery


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_requests_latency_and_tokens_are_counted(harness: Any, make_table: Any, make_pods: Any) -> None:
    fake = harness.fake("pod")
    url, app = harness.gateway(discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", fake))))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=10)
    client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
    list(
        client.chat.completions.create(
            model="llama",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    registry = app[gateway_app.METRICS].registry

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    # the stream's last bytes reach the client a moment before its handler counts it (the
    # duration last of all)
    duration = "modelyard_gateway_request_duration_seconds_count"
    wait_for(lambda: value(duration, model="llama", endpoint="ns/a", code="200") == 2, 10, "both counted")
    assert value("modelyard_gateway_requests_total", model="llama", endpoint="ns/a", code="200") == 2
    assert (
        value("modelyard_gateway_request_duration_seconds_count", model="llama", endpoint="ns/a", code="200")
        == 2
    )
    assert value("modelyard_gateway_tokens_total", model="llama", kind="prompt") == 5 + 3
    assert value("modelyard_gateway_tokens_total", model="llama", kind="completion") == 7 + 3
    assert value("modelyard_gateway_upstream_first_byte_seconds_count", model="llama", endpoint="ns/a") == 2
    assert value("modelyard_gateway_overhead_seconds_count") == 2
    target = f"ns/a@{fake.url.split('://')[1]}"
    assert value("modelyard_gateway_in_flight", endpoint="ns/a", target=target) == 0
    status, text = _get(f"{url}/metrics")
    assert status == 200 and "modelyard_gateway_requests_total" in text


def test_each_app_has_its_own_registry(harness: Any) -> None:
    _, one = harness.gateway(discovery.StaticDiscovery())
    _, two = harness.gateway(discovery.StaticDiscovery())
    assert one[gateway_app.METRICS].registry is not two[gateway_app.METRICS].registry


class _Unsynced(discovery.StaticDiscovery):
    @property
    def synced(self) -> bool:
        return False


def test_health_and_readiness(harness: Any) -> None:
    url, _ = harness.gateway(discovery.StaticDiscovery())
    assert _get(f"{url}/healthz") == (200, "ok")
    assert _get(f"{url}/readyz") == (200, "ok")
    unsynced, _ = harness.gateway(_Unsynced())
    assert _get(f"{unsynced}/healthz")[0] == 200
    assert _get(f"{unsynced}/readyz")[0] == 503


def test_in_flight_series_of_departed_pods_are_dropped(harness: Any, make_table: Any, make_pods: Any) -> None:
    one, two = harness.fake("one"), harness.fake("two")
    source = discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", one)))
    url, app = harness.gateway(source)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=10)
    client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
    source.set(make_table(make_pods("ns/a", "llama", two)))  # the pod was replaced
    client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
    text = app[gateway_app.METRICS].exposition().decode()
    series = [line for line in text.splitlines() if line.startswith("modelyard_gateway_in_flight{")]
    assert len(series) == 1 and two.url.split("://")[1] in series[0]
