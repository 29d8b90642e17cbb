"""Failures before the first byte are retried elsewhere; fallback models answer when one cannot."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from modelyard.gateway import app as gateway_app
from modelyard.gateway import discovery, routes


def _client(url: str, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10, **kw)


def _chat(url: str, model: str = "llama") -> str:
    reply = _client(url).chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    return reply.choices[0].message.content or ""


def _metric(app: Any, name: str, **labels: str) -> float:
    return app[gateway_app.METRICS].registry.get_sample_value(name, labels) or 0.0


def test_5xx_is_retried_on_another_pod(harness: Any, make_table: Any, make_pods: Any) -> None:
    broken, good = harness.fake("broken"), harness.fake("good")
    broken.mode = "error"
    url, app = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", broken, good))), eject_after=100
    )
    answers = {_chat(url) for _ in range(4)}
    assert answers == {"hello from good"}
    assert len(broken.requests) >= 1
    assert _metric(app, "modelyard_gateway_retries_total", model="llama", reason="status_5xx") >= 1


def test_hanging_pod_times_out_and_is_retried(harness: Any, make_table: Any, make_pods: Any) -> None:
    hung, good = harness.fake("hung"), harness.fake("good")
    hung.mode = "hang"
    url, app = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", hung, good))), attempt_timeout=0.3
    )
    # Ties go round-robin, so one of the two requests tries the hung pod first; the pod never
    # answers, so that request is answered only because its attempt timed out and went on.
    assert {_chat(url) for _ in range(2)} == {"hello from good"}
    assert len(hung.requests) == 1
    assert _metric(app, "modelyard_gateway_retries_total", model="llama", reason="timeout") == 1


def test_connection_refused_is_retried(harness: Any, make_table: Any, make_pods: Any) -> None:
    good = harness.fake("good")
    dead = routes.EndpointInfo(
        "ns/dead", "llama", 1000, targets=(discovery.pod_target("ns/dead", "http://127.0.0.1:9"),)
    )
    url, app = harness.gateway(
        discovery.StaticDiscovery(make_table(dead, make_pods("ns/a", "llama", good, weight=1)))
    )
    assert _chat(url) == "hello from good"
    assert _metric(app, "modelyard_gateway_retries_total", model="llama", reason="connect") == 1


def test_every_attempt_failing_relays_the_last_5xx(harness: Any, make_table: Any, make_pods: Any) -> None:
    broken = harness.fake("broken")
    broken.mode = "error"
    url, _ = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", broken))),
        retry_attempts=2,
        eject_after=100,
    )
    with pytest.raises(openai.InternalServerError) as caught:
        _chat(url)
    assert caught.value.status_code == 500
    assert len(broken.requests) == 3  # one try and RETRY_ATTEMPTS=2 retries of the only pod


def test_endpoint_fallback_answers_when_the_model_fails(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    big, small = harness.fake("big"), harness.fake("small")
    big.mode = "error"
    source = discovery.StaticDiscovery(
        make_table(
            make_pods("ns/big", "big", big, fallback=("small",)), make_pods("ns/small", "small", small)
        )
    )
    url, app = harness.gateway(source, retry_attempts=1)
    assert _chat(url, "big") == "hello from small"
    assert small.requests[-1]["body"]["model"] == "small"  # the fallback's own name is sent
    assert _metric(app, "modelyard_gateway_fallbacks_total", model="big", fallback="small") == 1


def test_gateway_fallback_model_serves_a_model_with_no_ready_endpoint(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    small = harness.fake("small")
    source = discovery.StaticDiscovery(
        make_table(make_pods("ns/cold", "cold", small, ready=False), make_pods("ns/small", "small", small))
    )
    url, _ = harness.gateway(source, fallback_model="small")
    assert _chat(url, "cold") == "hello from small"


def test_failing_pod_is_ejected(harness: Any, make_table: Any, make_pods: Any) -> None:
    broken, good = harness.fake("broken"), harness.fake("good")
    broken.mode = "error"
    url, app = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", broken, good))),
        eject_after=1,
        eject_cooldown=60,
    )
    for _ in range(10):
        assert _chat(url) == "hello from good"
    assert len(broken.requests) == 1
    assert _metric(app, "modelyard_gateway_ejections_total", endpoint="ns/a") == 1


def test_request_timeout_is_504(harness: Any, make_table: Any, make_pods: Any) -> None:
    hung = harness.fake("hung")
    hung.mode = "hang"
    url, _ = harness.gateway(
        discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", hung))), request_timeout=0.4
    )
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(url)
    assert caught.value.status_code == 504
    assert caught.value.body["type"] == "timeout_error"  # type: ignore[index]


def test_upstream_gets_its_key_headers_and_model_name(harness: Any, make_table: Any) -> None:
    remote = harness.fake("remote")
    upstream = routes.Upstream(model="gpt-remote", api_key="sk-upstream", headers=(("X-Org", "acme"),))
    info = routes.EndpointInfo(
        "ns/remote",
        "llama",
        targets=(discovery.upstream_target("ns/remote", remote.url + "/v1"),),
        upstream=upstream,
    )
    url, _ = harness.gateway(discovery.StaticDiscovery(make_table(info)))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="client-key", max_retries=0, timeout=10)
    client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
    sent = remote.requests[-1]
    assert sent["body"]["model"] == "gpt-remote"
    assert sent["headers"]["Authorization"] == "Bearer sk-upstream"
    assert sent["headers"]["X-Org"] == "acme"


def test_endpoint_fallback_serves_a_model_with_no_ready_endpoint(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    small = harness.fake("small")
    source = discovery.StaticDiscovery(
        make_table(
            make_pods("ns/big", "big", small, ready=False, fallback=("small",)),
            make_pods("ns/small", "small", small),
        )
    )
    url, _ = harness.gateway(source)
    assert _chat(url, "big") == "hello from small"


def test_audio_falls_back_with_the_form_model_rewritten(
    harness: Any, make_table: Any, make_pods: Any
) -> None:
    big, small = harness.fake("big"), harness.fake("small")
    big.mode = "error"
    source = discovery.StaticDiscovery(
        make_table(
            make_pods("ns/big", "whisper-big", big, fallback=("whisper-small",)),
            make_pods("ns/small", "whisper-small", small),
        )
    )
    url, _ = harness.gateway(source, retry_attempts=0)
    result = _client(url).audio.transcriptions.create(model="whisper-big", file=("a.wav", b"RIFF1234"))
    assert result.text == "small heard 8 bytes"
    assert small.requests[-1]["form"]["model"] == "whisper-small"
