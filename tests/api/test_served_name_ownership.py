"""The served-name ownership rule (api/served_names.py), from plain facts."""

from __future__ import annotations

from modelyard.api import served_names as sn


def ep(ns: str, name: str, created: str, served: str, model: str = "m", share: tuple[str, ...] = (),
       fallback: tuple[str, ...] = ()) -> sn.EndpointFacts:  # fmt: skip
    return sn.EndpointFacts(ns, name, created, served, model, share, fallback)


T1, T2, T3 = "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"


def test_first_come_the_oldest_endpoints_namespace_owns_the_name() -> None:
    result = sn.decide([ep("mallory", "hijack", T2, "chat"), ep("alice", "chat", T1, "chat")], [])
    assert result.owners["chat"].namespaces == {"alice"}
    assert result.verdict("alice", "chat").conflict is None
    verdict = result.verdict("mallory", "hijack")
    assert verdict.conflict is not None and verdict.owner == "alice"
    assert "namespace alice" in verdict.conflict and "alice/chat came first" in verdict.conflict
    assert sn.RULE in verdict.conflict


def test_ties_go_by_namespace_then_name_and_same_namespace_endpoints_split() -> None:
    result = sn.decide([ep("b", "x", T1, "chat"), ep("a", "y", T1, "chat"), ep("a", "b", T2, "chat")], [])
    assert result.owners["chat"].first == "a/y"
    assert result.verdict("a", "b").conflict is None
    assert result.verdict("b", "x").conflict is not None


def test_the_next_oldest_takes_the_name_when_the_owner_leaves() -> None:
    result = sn.decide([ep("mallory", "hijack", T2, "chat")], [])
    assert result.verdict("mallory", "hijack").conflict is None
    assert result.owners["chat"].namespaces == {"mallory"}


def test_an_endpoint_not_created_yet_is_the_newest() -> None:
    result = sn.decide([ep("mallory", "hijack", "", "chat"), ep("alice", "chat", T3, "chat")], [])
    assert result.verdict("mallory", "hijack").owner == "alice"


def test_share_served_name_with_lets_a_namespace_in() -> None:
    facts = [ep("alice", "chat", T1, "chat", share=("bob",)), ep("bob", "chat", T2, "chat"),
             ep("mallory", "chat", T3, "chat")]  # fmt: skip
    result = sn.decide(facts, [])
    assert result.verdict("bob", "chat").conflict is None
    assert result.verdict("mallory", "chat").conflict is not None
    assert result.owners["chat"].allowed == {"alice", "bob"}


def test_sharing_counts_only_from_the_owning_namespace() -> None:
    facts = [ep("alice", "chat", T1, "chat"), ep("mallory", "chat", T2, "chat", share=("mallory", "eve")),
             ep("eve", "chat", T3, "chat")]  # fmt: skip
    result = sn.decide(facts, [])
    assert result.verdict("eve", "chat").conflict is not None
    assert result.verdict("mallory", "chat").conflict is not None


def test_a_platform_claim_owns_the_name_whatever_entry_is_deployed() -> None:
    claims = [sn.EntryClaim("tiny", "tiny-chat", frozenset({"quickstart"}))]
    facts = [ep("mallory", "hijack", T1, "tiny-chat", model="other"),
             ep("quickstart", "chat", T2, "tiny-chat", model="tiny")]  # fmt: skip
    result = sn.decide(facts, claims)
    verdict = result.verdict("mallory", "hijack")
    assert verdict.conflict is not None and verdict.owner == "quickstart"
    assert "the platform: ModelEntry tiny lists namespaces quickstart" in verdict.conflict
    assert result.verdict("quickstart", "chat").conflict is None


def test_a_claimed_entry_is_deployed_only_from_its_namespaces_under_any_name() -> None:
    claims = [sn.EntryClaim("tiny", "tiny-chat", frozenset({"quickstart", "team"}))]
    facts = [ep("mallory", "mine", T1, "my-name", model="tiny"), ep("team", "t", T2, "t2", "tiny")]
    result = sn.decide(facts, claims)
    verdict = result.verdict("mallory", "mine")
    assert verdict.conflict is not None and verdict.conflict.startswith("spec.model: ModelEntry tiny")
    assert verdict.owner == "quickstart, team"
    assert "my-name" not in result.owners, "a denied endpoint does not take a name by being first"
    assert result.verdict("team", "t").conflict is None


def test_several_claims_on_one_name_are_the_union() -> None:
    claims = [sn.EntryClaim("a", "chat", frozenset({"x"})), sn.EntryClaim("b", "chat", frozenset({"y"}))]
    result = sn.decide([ep("x", "1", T1, "chat"), ep("y", "2", T2, "chat"), ep("z", "3", T3, "chat")], claims)
    assert result.owners["chat"].namespaces == {"x", "y"}
    assert [result.verdict(ns, n).conflict is None for ns, n in (("x", "1"), ("y", "2"), ("z", "3"))] == [
        True, True, False,
    ]  # fmt: skip


def test_share_does_not_open_a_platform_name() -> None:
    claims = [sn.EntryClaim("a", "chat", frozenset({"x"}))]
    result = sn.decide([ep("x", "1", T1, "chat", share=("z",)), ep("z", "2", T2, "chat")], claims)
    assert result.verdict("z", "2").conflict is not None


def test_fallback_keeps_own_shared_and_unowned_names_only() -> None:
    facts = [
        ep("alice", "chat", T1, "chat"),
        ep("bob", "big", T1, "big", share=("mallory",)),
        ep("mallory", "m", T2, "m", fallback=("chat", "big", "nobody-serves-this")),
    ]
    verdict = sn.decide(facts, []).verdict("mallory", "m")
    assert verdict.conflict is None
    assert verdict.fallback == ("big", "nobody-serves-this")
    assert verdict.ignored_fallback == ("chat",)
    message = verdict.fallback_message()
    assert message is not None and "spec.fallback chat ignored" in message


def test_names_for_namespaces_are_owned_and_shared_names() -> None:
    claims = [sn.EntryClaim("p", "platform-chat", frozenset({"team"}))]
    facts = [ep("team", "a", T1, "team-chat"), ep("other", "b", T1, "other-chat", share=("team",)),
             ep("other", "c", T1, "private")]  # fmt: skip
    result = sn.decide(facts, claims)
    assert result.names_for(["team"]) == {"platform-chat", "team-chat", "other-chat"}
    assert result.may_serve("anyone", "unknown-name")
