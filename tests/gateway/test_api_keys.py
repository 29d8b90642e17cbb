"""Bearer API keys from a Secret: OpenAI-style 401/403, allow-lists, and keys never logged."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest

from modelyard.gateway import auth, discovery, routes

KEYS = {
    "alice": "sk-alice-0123456789",
    "bob": "sk-bob-9876543210",
    "bob.models": "small, other",
}


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)


def _chat(url: str, key: str, model: str = "llama") -> str:
    reply = _client(url, key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "x"}]
    )
    return reply.choices[0].message.content or ""


@pytest.fixture()
def gateway(harness: Any, make_table: Any, make_pods: Any) -> tuple[str, Any]:
    fake = harness.fake("pod")
    source = discovery.StaticDiscovery(
        make_table(make_pods("ns/a", "llama", fake), make_pods("ns/b", "small", fake)),
        auth.KeyTable.from_data(KEYS),
    )
    url, _ = harness.gateway(source)
    return url, fake


def test_a_valid_key_is_served_and_not_forwarded(gateway: tuple[str, Any]) -> None:
    url, fake = gateway
    assert _chat(url, KEYS["alice"]) == "hello from pod"
    assert "Authorization" not in fake.requests[-1]["headers"]


def test_missing_or_wrong_key_is_401(gateway: tuple[str, Any]) -> None:
    url, _ = gateway
    with pytest.raises(openai.AuthenticationError) as caught:
        _chat(url, "sk-wrong")
    assert caught.value.body == {  # the OpenAI shape
        "message": "invalid API key",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_api_key",
    }
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{url}/v1/models", timeout=10)
    assert missing.value.code == 401
    assert json.loads(missing.value.read())["error"]["type"] == "authentication_error"


def test_allow_list_limits_models_with_403(gateway: tuple[str, Any]) -> None:
    url, _ = gateway
    assert _chat(url, KEYS["bob"], "small") == "hello from pod"
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _chat(url, KEYS["bob"], "llama")
    assert caught.value.body["type"] == "permission_error"  # type: ignore[index]
    assert [m.id for m in _client(url, KEYS["bob"]).models.list()] == ["small"]
    assert [m.id for m in _client(url, KEYS["alice"]).models.list()] == ["llama", "small"]


@pytest.mark.parametrize(
    "data",
    [{}, {"alice": "  ", "alice.models": "llama", "bob.models": "x", "carol": "sk-c", "carol.rpm": "many"}],
    ids=["empty", "only-unusable-keys"],
)
def test_no_usable_key_refuses_every_request_and_readyz_says_so(
    harness: Any, make_table: Any, make_pods: Any, data: dict[str, str]
) -> None:
    fake = harness.fake("pod")
    keys = auth.KeyTable.from_data(data)
    source = discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", fake)), keys)
    url, _ = harness.gateway(source, auth=True)
    for key in ("anything", "sk-c"):
        with pytest.raises(openai.AuthenticationError) as caught:
            _chat(url, key)
        assert caught.value.body["code"] == "no_api_key_configured"  # type: ignore[index]
        assert "no API key is configured on this gateway" in caught.value.body["message"]  # type: ignore[index]
    with pytest.raises(urllib.error.HTTPError) as listing:
        urllib.request.urlopen(f"{url}/v1/models", timeout=10)
    assert listing.value.code == 401
    assert not fake.requests
    with urllib.request.urlopen(f"{url}/readyz", timeout=10) as ready:
        text = ready.read().decode()
    assert ready.status == 200 and text.startswith("no API key is configured on this gateway: ")
    if data:
        assert "alice: the key is empty" in text and "carol.rpm must be a whole number" in text
        assert "bob.models: not a key setting of a key named 'bob'" in text
    assert "sk-c" not in text


def test_auth_off_serves_without_a_key(harness: Any, make_table: Any, make_pods: Any) -> None:
    fake = harness.fake("pod")
    source = discovery.StaticDiscovery(make_table(make_pods("ns/a", "llama", fake)))
    url, _ = harness.gateway(source, auth=False)
    assert _chat(url, "anything") == "hello from pod"


def test_keys_are_never_logged(harness: Any, make_table: Any, caplog: pytest.LogCaptureFixture) -> None:
    broken = harness.fake("broken")
    broken.mode = "error"
    upstream = routes.Upstream(api_key="sk-upstream-secret")
    info = routes.EndpointInfo(
        "ns/up", "llama", targets=(discovery.upstream_target("ns/up", broken.url + "/v1"),), upstream=upstream
    )
    source = discovery.StaticDiscovery(routes.build_table([info]), auth.KeyTable.from_data(KEYS))
    url, _ = harness.gateway(source, retry_attempts=1)
    caplog.set_level(logging.DEBUG)
    for key in (KEYS["alice"], "sk-not-a-key"):
        with pytest.raises(openai.APIStatusError):
            _chat(url, key)
    assert broken.requests  # the failures were logged
    text = caplog.text + repr(info) + repr(source.keys())
    for secret in (*KEYS.values(), "sk-not-a-key", "sk-upstream-secret"):
        if secret.startswith("sk-"):
            assert secret not in text


def test_key_table_format() -> None:
    table = auth.KeyTable.from_data({"a": "k1", "a.models": "x,y", "a.concurrency": "2", "b": " k2 "})
    a, b = table.keys
    assert (a.name, a.models, a.concurrency) == ("a", frozenset({"x", "y"}), 2)
    assert (b.name, b.models, b.concurrency) == ("b", None, None)
    assert table.lookup("k2") is b and table.lookup("k3") is None
    assert auth.bearer_token("Bearer  k1 ") == "k1" and auth.bearer_token("Basic k1") is None
