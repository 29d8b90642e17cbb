"""response_format: the built-in handler decodes under the schema's grammar (xgrammar).

The tiny Llama has random weights: left alone it writes byte soup. So an answer that parses
and validates against a schema with required fields, enums, bounded values and nesting was
made so by the constrained decoder, for every seed and temperature tried, streamed or not.
The schema bounds every string, number and array, so each document ends within the budget.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

DEPLOYMENT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "status": {"enum": ["active", "paused", "retired"]},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 64},
        "owner": {
            "type": "object",
            "properties": {"team": {"enum": ["ml", "infra"]}, "oncall": {"type": "boolean"}},
            "required": ["team", "oncall"],
        },
        "tags": {"type": "array", "items": {"enum": ["gpu", "cpu", "spot"]}, "maxItems": 3},
    },
    "required": ["name", "status", "replicas", "owner"],
}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "deployment", "schema": DEPLOYMENT}}
MESSAGES = [{"role": "user", "content": "describe a deployment"}]


def _valid(text: str) -> dict[str, Any]:
    value = json.loads(text)
    jsonschema.validate(value, DEPLOYMENT)
    assert isinstance(value, dict)
    return value


def _ask(client: Any, seed: int, **overrides: Any) -> Any:
    """A sampled request for the schema's JSON (the settings each test changes given as overrides)."""
    settings: dict[str, Any] = {
        "messages": MESSAGES,
        "response_format": SCHEMA_FORMAT,
        "max_tokens": 400,
        "temperature": 1.0,
        **overrides,
    }
    return client.chat.completions.create(model="tiny-llama", seed=seed, **settings)


@pytest.mark.parametrize(
    ("seed", "temperature", "top_p"), [(1, 1.0, 1.0), (2, 1.3, 1.0), (3, 0.8, 0.9), (4, 1.0, 0.95)]
)
def test_every_sampled_answer_validates_against_the_schema(
    client: Any, seed: int, temperature: float, top_p: float
) -> None:
    reply = _ask(client, seed, temperature=temperature, top_p=top_p)
    assert reply.choices[0].finish_reason == "stop"
    _valid(reply.choices[0].message.content)


def test_concurrent_constrained_and_free_requests_share_the_batch(client: Any) -> None:
    import concurrent.futures

    def ask(seed: int) -> Any:
        fmt = SCHEMA_FORMAT if seed % 2 else None
        kwargs = {"response_format": fmt} if fmt else {}
        return client.chat.completions.create(
            model="tiny-llama", messages=MESSAGES, max_tokens=400, temperature=1.0, seed=seed, **kwargs
        )

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(ask, range(6)))
    values = [_valid(r.choices[0].message.content) for seed, r in enumerate(replies) if seed % 2]
    assert len(values) == 3
    assert any(not _parses(r.choices[0].message.content) for seed, r in enumerate(replies) if not seed % 2), (
        "the unconstrained tiny model wrote JSON: this test could not tell the decoder works"
    )


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_a_streamed_answer_validates_against_the_schema(client: Any) -> None:
    for seed in (5, 6):
        stream = _ask(client, seed, stream=True)
        chunks = [c for c in stream if c.choices]
        assert chunks[-1].choices[0].finish_reason == "stop"
        _valid("".join(c.choices[0].delta.content or "" for c in chunks))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_json_object_mode_returns_a_json_object(client: Any, seed: int) -> None:
    reply = _ask(
        client,
        seed,
        messages=[{"role": "user", "content": "give me json"}],
        response_format={"type": "json_object"},
    )
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_min_tokens_never_pushes_the_answer_past_the_finished_document(client: Any) -> None:
    reply = _ask(client, 8, extra_body={"ignore_eos": True})
    assert reply.choices[0].finish_reason == "stop"
    _valid(reply.choices[0].message.content)


def test_a_budget_too_small_for_the_document_ends_with_length(client: Any) -> None:
    reply = client.chat.completions.create(
        model="tiny-llama", messages=MESSAGES, response_format=SCHEMA_FORMAT, max_tokens=5, seed=1
    )
    text = reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "length"
    assert text and ('{"name"'.startswith(text) or text.startswith('{"name"'))  # the schema's first field


@pytest.mark.parametrize(
    "schema",
    [
        {"type": 12},  # not a JSON schema
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},  # no grammar for it
        {"type": "array", "items": {"enum": [1, 2]}, "uniqueItems": True},  # not enforced: refused
        {
            "type": "object",
            "properties": {"not": {"anyOf": [{"type": "integer"}, {"not": {"type": "string"}}]}},
        },
    ],
)
def test_an_invalid_schema_is_a_400_naming_it(client: Any, schema: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="tiny-llama",
            messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_schema", "json_schema": {"name": "bad", "schema": schema}},
        )
    assert info.value.body["param"] == "response_format.json_schema.schema"


def test_only_keywords_the_grammar_cannot_enforce_are_refused() -> None:
    from modelyard.runtime.handlers import structured

    assert structured.unenforced(DEPLOYMENT) is None
    named_like_keywords = {"properties": {"not": {"enum": ["if"]}, "if": {"const": {"not": 1}}}}
    assert structured.unenforced(named_like_keywords) is None
    assert structured.unenforced({"anyOf": [{"type": "string"}, {"not": {}}]}) == "/anyOf/1/not"
    assert structured.unenforced({"$defs": {"x": {"if": {}}}}) == "/$defs/x/if"


def test_a_vocabulary_that_cannot_spell_the_grammar_ends_the_sequence(minilm_dir: Any) -> None:
    """MiniLM's WordPiece vocabulary has no space token, so it cannot write ``": "``: the
    processor offers end-of-sequence instead of a row of ``-inf`` (which would fail the batch)."""
    import types

    import torch
    import transformers

    from modelyard.runtime.handlers import structured

    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    model = types.SimpleNamespace(config=types.SimpleNamespace(vocab_size=len(tok)))
    grammars = structured.Grammars(tok, model, {tok.sep_token_id})
    schema = {"type": "object", "properties": {"a": {"enum": ["x"]}}, "required": ["a"]}
    processor = grammars.processor({"type": "json_schema", "json_schema": {"schema": schema}})
    generated: list[int] = []
    while not generated or generated[-1] != tok.sep_token_id:
        assert len(generated) < 20
        scores = processor(generated, torch.zeros(1, len(tok)))
        assert bool(torch.isfinite(scores).any())
        generated.append(int(scores.argmax()))
    assert processor.broken
