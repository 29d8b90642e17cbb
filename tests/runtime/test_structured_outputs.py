"""response_format: JSON-constrained decoding on the built-in handler, schema validate-and-retry."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from modelyard.runtime.handlers import jsonprefix


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_json_object_mode_always_returns_a_json_object(client: Any, seed: int) -> None:
    reply = client.chat.completions.create(
        model="tiny-llama",
        messages=[{"role": "user", "content": "give me json"}],
        response_format={"type": "json_object"},
        max_tokens=40,
        temperature=1.0,
        seed=seed,
    )
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_json_schema_mode_returns_schema_valid_json(client: Any) -> None:
    schema = {"type": "object"}
    reply = client.chat.completions.create(
        model="tiny-llama",
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_schema", "json_schema": {"name": "thing", "schema": schema}},
        max_tokens=30,
        temperature=0.7,
        seed=5,
    )
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_a_short_budget_still_closes_the_json(client: Any) -> None:
    reply = client.chat.completions.create(
        model="tiny-llama",
        messages=[{"role": "user", "content": "x"}],
        response_format={"type": "json_object"},
        max_tokens=6,
        temperature=1.0,
        seed=11,
    )
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_an_invalid_schema_is_a_400(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="tiny-llama",
            messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_schema", "json_schema": {"name": "bad", "schema": {"type": 12}}},
        )
    assert info.value.body["param"] == "response_format.json_schema.schema"


def test_json_prefix_checker() -> None:
    for good in ['{"a": [1, -2.5e3, true, null, "x\\u00e9"], "b": {}}', "{}", '{"a":[]}']:
        p = jsonprefix.JsonPrefix()
        assert p.feed_text(good) and p.done, good
    for bad in ["[1]", '{"a" 1}', "{,}", '{"a":01}', "{  }"]:
        p = jsonprefix.JsonPrefix()
        assert not (p.feed_text(bad) and p.done), bad
    for prefix in ["{", '{"a', '{"a":', '{"a":[1, {"b":tr', '{"a":"\\u12', '{"a":1.']:
        p = jsonprefix.JsonPrefix()
        assert p.feed_text(prefix)
        json.loads(prefix + p.completion())
