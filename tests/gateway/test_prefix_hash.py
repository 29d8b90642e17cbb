"""PrefixHash: consistent hashing with bounded loads over an endpoint's pods, in memory.

The same key reaches the same pod; a hot key spills to the next pod at the load bound; pods
coming and going move only their share of the keys; the choice depends on the set of pods,
never on their order or on the process; the weighted split between endpoints is unchanged.
"""

from __future__ import annotations

import collections
import math
import pathlib
import subprocess
import sys

import msgspec
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard import api
from modelyard.gateway import balancer, body, discovery, prefixhash, routes
from modelyard.registry import manifests

PREFIX = routes.Routing("PrefixHash", 512, 1.25)
KEYS = [f"p:system prompt of tenant {i} " * 8 for i in range(2000)]


def _pods(count: int, start: int = 0) -> list[str]:
    return [f"ns/chat@10.0.0.{i}:8000" for i in range(start, start + count)]


def _endpoint(name: str, weight: int, pods: int, routing: routes.Routing = PREFIX) -> routes.EndpointInfo:
    targets = tuple(discovery.pod_target(name, f"http://10.0.1.{i}:8000") for i in range(pods))
    return routes.EndpointInfo(name, "chat", weight, targets=targets, routing=routing)


def _model(*infos: routes.EndpointInfo) -> routes.Model:
    model = routes.build_table(infos).get("chat")
    assert model is not None
    return model


def _owners(ring: prefixhash.Ring) -> dict[str, str | None]:
    return {key: ring.owner(key) for key in KEYS}


def test_the_same_key_reaches_the_same_pod_and_keys_spread_over_all_pods() -> None:
    model = _model(_endpoint("ns/chat", 100, pods=4))
    chooser = balancer.WeightedLeastBusy()
    first = {key: chooser.choose(model, (), key) for key in KEYS[:200]}
    again = {key: chooser.choose(model, (), key) for key in reversed(KEYS[:200])}
    assert first == again
    spread = collections.Counter(choice[1].key for choice in first.values() if choice and choice[1])
    assert len(spread) == 4 and min(spread.values()) >= 200 / 4 / 2  # each pod ~1/4, none starved


def test_the_ring_depends_on_the_set_of_pods_not_their_order_or_the_process() -> None:
    pods = _pods(5)
    forward, backward = prefixhash.Ring(pods), prefixhash.Ring(list(reversed(pods)) + pods[:2])
    assert _owners(forward) == _owners(backward)
    # another interpreter (its own hash seed) puts keys where this one does
    code = (
        "from modelyard.gateway import prefixhash;"
        f"ring = prefixhash.Ring({pods!r});"
        f"print('\\n'.join(str(ring.owner(k)) for k in {KEYS[:50]!r}))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": ":".join(sys.path)},
    ).stdout.split()  # fmt: skip
    assert other == [forward.owner(k) for k in KEYS[:50]]


def test_a_pod_leaving_moves_only_its_own_keys() -> None:
    before = _owners(prefixhash.Ring(_pods(10)))
    gone = "ns/chat@10.0.0.3:8000"
    after = _owners(prefixhash.Ring([p for p in _pods(10) if p != gone]))
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(before[key] == gone for key in moved)
    assert len(moved) == sum(owner == gone for owner in before.values())
    assert 0.05 <= len(moved) / len(KEYS) <= 0.15  # about 1/10


def test_a_pod_joining_takes_about_its_share_and_nothing_else_moves() -> None:
    before = _owners(prefixhash.Ring(_pods(10)))
    new = _pods(1, start=10)[0]
    after = _owners(prefixhash.Ring([*_pods(10), new]))
    moved = [key for key in KEYS if before[key] != after[key]]
    assert moved and all(after[key] == new for key in moved)
    assert 0.045 <= len(moved) / len(KEYS) <= 0.14  # about 1/11


def test_a_hot_key_spills_at_the_load_bound_and_comes_back_when_load_falls() -> None:
    model = _model(_endpoint("ns/chat", 100, pods=3))
    chooser = balancer.WeightedLeastBusy()
    hot = KEYS[0]
    owner = chooser.choose(model, (), hot)
    assert owner is not None and owner[1] is not None
    held: list[routes.Target] = []
    for _ in range(30):  # 30 requests of one key, none finishing
        choice = chooser.choose(model, (), hot)
        assert choice is not None and choice[1] is not None
        total = sum(chooser.load(t.key) for t in model.endpoints[0].targets)
        bound = math.ceil(PREFIX.load_factor * (total + 1) / 3)
        assert chooser.load(choice[1].key) < bound  # the pod picked was under the bound
        chooser.started(choice[1])
        held.append(choice[1])
    loads = sorted(chooser.load(t.key) for t in model.endpoints[0].targets)
    assert loads[0] > 0 and loads[-1] <= math.ceil(PREFIX.load_factor * 30 / 3)
    assert chooser.spills()["ns/chat"] > 0
    for target in held:
        chooser.finished(target, ok=True)
    assert chooser.choose(model, (), hot) == owner  # idle again: back on its own pod


def test_tried_and_ejected_pods_pass_the_key_to_the_next_pod_on_its_walk() -> None:
    model = _model(_endpoint("ns/chat", 100, pods=3))
    now = [0.0]
    chooser = balancer.WeightedLeastBusy(eject_after=1, eject_cooldown=5, clock=lambda: now[0])
    key = KEYS[7]
    first = chooser.choose(model, (), key)
    assert first is not None and first[1] is not None
    second = chooser.choose(model, {first[1].key}, key)
    assert second is not None and second[1] not in (None, first[1])
    chooser.started(first[1])
    assert chooser.finished(first[1], ok=False)  # ejected
    assert chooser.choose(model, (), key) == second
    now[0] = 6.0
    assert chooser.choose(model, (), key) == first


def test_weighted_split_between_endpoints_stays_within_one_point_with_prefix_hash() -> None:
    model = _model(
        _endpoint("ns/a", 700, pods=3),
        _endpoint("ns/b", 200, pods=2),
        _endpoint("ns/c", 100, pods=1, routing=routes.LEAST_BUSY),
    )
    chooser = balancer.WeightedLeastBusy()
    counts: collections.Counter[str] = collections.Counter()
    for i in range(10_000):
        choice = chooser.choose(model, (), KEYS[i % 50])  # few hot keys: the skew cannot leak
        assert choice is not None
        counts[choice[0].name] += 1
    shares = {name: count / 100 for name, count in counts.items()}
    assert abs(shares["ns/a"] - 70) <= 1 and abs(shares["ns/b"] - 20) <= 1 and abs(shares["ns/c"] - 10) <= 1


def test_least_busy_endpoints_ignore_the_key() -> None:
    model = _model(_endpoint("ns/chat", 100, pods=3, routing=routes.LEAST_BUSY))
    chooser = balancer.WeightedLeastBusy()
    seen = {chooser.choose(model, (), KEYS[0])[1] for _ in range(30)}  # type: ignore[index]
    assert len(seen) == 3 and model.affinity is None


def test_the_key_is_the_rendered_prompt_prefix_and_the_user_field() -> None:
    chat = body.parse(
        b'{"model": "m", "user": "u-1", "messages": [{"role": "system", "content": "You help."},'
        b'{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]}]}',
        "application/json",
    )
    assert chat.prompt_and_user(100) == ("You help.\nhi\n", "u-1")
    assert chat.prompt_and_user(3) == ("You", "u-1")
    completion = body.parse(b'{"model": "m", "prompt": "Once upon a time"}', "application/json")
    assert completion.prompt_and_user(4) == ("Once", None)
    odd = body.parse(b'{"model": "m", "messages": {"not": "a list"}, "user": 5}', "application/json")
    assert odd.prompt_and_user(10) == ("", None)  # routed by the empty prefix, not refused


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["content", "text", "x"]), inner)
    ),
    max_leaves=12,
)


@given(messages=_JSON, prompt=_JSON, user=_JSON, chars=st.integers(1, 50))
def test_any_body_gives_a_key_never_an_error(
    messages: object, prompt: object, user: object, chars: int
) -> None:
    raw = msgspec.json.encode({"model": "m", "messages": messages, "prompt": prompt, "user": user})
    text, found = body.parse(raw, "application/json").prompt_and_user(chars)
    assert isinstance(text, str) and len(text) <= chars
    assert found == (user if isinstance(user, str) else None)


@pytest.mark.parametrize(
    ("routing", "field", "words"),
    [
        ({"strategy": "Random"}, "spec.routing.strategy", "must be one of 'LeastBusy' or 'PrefixHash'"),
        ({"loadFactor": 1.0}, "spec.routing.loadFactor", "greater than 1"),
        ({"loadFactor": 500}, "spec.routing.loadFactor", "less than or equal to 100"),
        ({"prefixCharLength": 0}, "spec.routing.prefixCharLength", "greater than or equal to 1"),
        ({"sessionHeader": "X Session"}, "spec.routing.sessionHeader", "should match pattern"),
    ],
)
def test_bad_routing_values_name_the_field(routing: dict[str, object], field: str, words: str) -> None:
    doc = {"kind": "ModelEndpoint", "metadata": {"name": "e"}, "spec": {"model": "m", "routing": routing}}
    with pytest.raises(pydantic.ValidationError) as caught:
        api.ModelEndpoint.model_validate(doc)
    lines = manifests.field_errors(caught.value)
    assert any(line.startswith(f"{field}:") and words in line for line in lines), lines


def test_routes_file_routing_is_checked_like_the_crd(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "routes.yaml"
    good = "models:\n  - name: chat\n    endpoints:\n      - urls: ['http://10.0.0.1:8000']\n"
    good += "        routing: {}\n"
    path.write_text(good.replace("{}", "{strategy: PrefixHash, prefixCharLength: 64, sessionUser: true}"))
    model = discovery.load_routes_file(path).table().get("chat")
    assert model is not None and model.affinity == routes.Routing("PrefixHash", 64, 1.25, None, True)
    path.write_text(good.replace("{}", "{strategy: PrefixHash, loadFactor: 0.5}"))
    wanted = r"endpoint chat-0: routing\.loadFactor: Input should be greater than 1"
    with pytest.raises(ValueError, match=wanted):
        discovery.load_routes_file(path)
