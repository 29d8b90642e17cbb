"""API keys limited to namespaces (``<name>.namespaces``): they reach only the served names those
namespaces own or share, and nothing while that is unknown (fail closed)."""

from __future__ import annotations

from modelyard.gateway import auth


def test_a_key_limited_to_namespaces_reaches_only_their_names() -> None:
    table = auth.KeyTable.from_data({
        "team": "sk-team", "team.namespaces": " team-a , team-b ",
        "both": "sk-both", "both.namespaces": "team-a", "both.models": "chat,other",
        "ops": "sk-ops",
    })  # fmt: skip
    owned = {"team-a": frozenset({"chat", "embed"}), "team-b": frozenset({"big"})}
    reached = table.with_reachable(
        lambda namespaces: frozenset().union(*(owned.get(n, ()) for n in namespaces))
    )
    team, both, ops = (reached.lookup(k) for k in ("sk-team", "sk-both", "sk-ops"))
    assert team is not None and both is not None and ops is not None
    assert team.namespaces == {"team-a", "team-b"}
    assert [team.allows(m) for m in ("chat", "embed", "big", "theirs")] == [True, True, True, False]
    assert [both.allows(m) for m in ("chat", "embed", "other")] == [True, False, False]
    assert ops.allows("theirs")


def test_until_ownership_is_known_a_namespace_key_reaches_nothing() -> None:
    key = auth.KeyTable.from_data({"team": "sk-team", "team.namespaces": "team-a"}).lookup("sk-team")
    assert key is not None and not key.allows("chat")
