"""An upstream endpoint whose key Secret the platform did not grant the gateway says so in its
status (the gateway leaves it out of routing), naming the Secret and the chart value."""

from __future__ import annotations

import dataclasses

from factories import entry

from modelyard.builders import settings, trust

UPSTREAM = {"provider": "upstream", "repo": "gpt-4o"}


def _upstream_entry(**ref: str) -> object:
    upstream = {"baseUrl": "https://api.openai.com/v1", "model": "gpt-4o"}
    if ref:
        upstream["apiKeySecretRef"] = {"key": "api-key", **ref}
    return entry("gpt", source=UPSTREAM, runtime={"engine": "upstream"}, upstream=upstream)


def _granted(*grants: str) -> settings.Settings:
    return dataclasses.replace(settings.Settings(), gateway_secret_grants=frozenset(grants))


def test_a_secret_not_granted_is_named_with_the_value_that_grants_it() -> None:
    problem = trust.upstream_key_problem(_upstream_entry(name="openai-key"), "team-a", _granted())
    assert problem is not None
    assert "team-a/openai-key" in problem and "gateway.upstreamKeySecrets" in problem


def test_a_granted_secret_in_the_endpoints_or_the_refs_namespace_is_fine() -> None:
    granted = _granted("team-a/openai-key", "shared/openai-key")
    assert trust.upstream_key_problem(_upstream_entry(name="openai-key"), "team-a", granted) is None
    ref_elsewhere = _upstream_entry(name="openai-key", namespace="shared")
    assert trust.upstream_key_problem(ref_elsewhere, "team-b", granted) is None
    assert trust.upstream_key_problem(_upstream_entry(name="openai-key"), "team-b", granted) is not None


def test_no_key_or_unknown_grants_are_not_checked() -> None:
    assert trust.upstream_key_problem(_upstream_entry(), "team-a", _granted()) is None
    unknown = settings.Settings()  # an operator run without --gateway-secret-grants
    assert trust.upstream_key_problem(_upstream_entry(name="openai-key"), "team-a", unknown) is None
