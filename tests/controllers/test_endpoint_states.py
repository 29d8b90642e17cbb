"""The operator's endpoint states keep each entry's endpoints as they change: what an entry's
reconcile reads (its ``status.endpoints``) without scanning the fleet."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from modelyard.controllers import context

KEYS = st.tuples(st.sampled_from(["team-a", "team-b"]), st.sampled_from(["chat", "embed", "code"]))
MODELS = st.sampled_from(["qwen3", "llama", "minilm"])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, MODELS),
        st.tuples(st.just("pop"), KEYS, st.none()),
        st.tuples(st.just("del"), KEYS, st.none()),
    ),
    max_size=40,
)


@given(STEPS)
def test_each_entry_lists_exactly_the_endpoints_that_name_it(
    steps: list[tuple[str, tuple[str, str], str]],
) -> None:
    states = context.EndpointStates()
    for op, key, model in steps:
        if op == "set":
            states[key] = context.EndpointState(model=model, ready=False, phase="Pending")
        elif op == "pop":
            states.pop(key, None)
        elif key in states:
            del states[key]
        for name in ("qwen3", "llama", "minilm"):
            assert states.of(name) == sorted(k for k, s in states.items() if s.model == name)


def test_an_endpoint_moved_to_another_entry_leaves_the_first() -> None:
    ctx_states = context.EndpointStates()
    ctx_states[("team", "chat")] = context.EndpointState(model="qwen3", ready=True, phase="Ready")
    ctx_states[("team", "chat")] = context.EndpointState(model="llama", ready=False, phase="Pending")
    assert ctx_states.of("qwen3") == []
    assert ctx_states.of("llama") == [("team", "chat")]
    assert len(ctx_states) == 1 and dict(ctx_states) == {("team", "chat"): ctx_states[("team", "chat")]}
