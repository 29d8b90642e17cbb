"""Tool calls in generated text, tools checked, the forced call's schema: pure logic
(:mod:`modelyard.runtime.toolcalls`)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from modelyard.local import tinymodels
from modelyard.runtime import errors, toolcalls

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "the weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["paris", "tokyo"]}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


def _plan(choice: Any = None, fmt: str = "hermes", parallel: bool | None = None) -> toolcalls.Plan:
    p = toolcalls.plan([WEATHER, TIME], choice, parallel, fmt)
    assert p is not None
    return p


def test_the_format_is_read_from_the_template_or_the_entry() -> None:
    assert toolcalls.detect(tinymodels.TOOL_CHAT_TEMPLATE, None) == ("hermes", "")
    assert toolcalls.detect(tinymodels.TOOL_CHAT_TEMPLATE, "llama3_json") == ("llama3_json", "")
    assert toolcalls.detect("{{ tools }} <|python_tag|>", None) == ("llama3_json", "")
    assert toolcalls.detect({"default": "x", "tool_use": "{{ tools }}<tool_call>"}, None)[0] == "hermes"
    fmt, why = toolcalls.detect(tinymodels.CHAT_TEMPLATE, "hermes")
    assert fmt is None and "does not render tools" in why
    fmt, why = toolcalls.detect("{{ tools }}", "mistral")
    assert fmt is None and "mistral" in why
    fmt, why = toolcalls.detect("{{ tools }}", None)
    assert fmt is None and "toolCallParser" in why


def test_hermes_calls_are_found_between_their_tags_and_the_rest_is_content() -> None:
    text = (
        'let me look<tool_call>{"name": "get_weather", "arguments": {"city": "paris"}}</tool_call>'
        '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    )
    content, calls = toolcalls.parse("hermes", text, [WEATHER, TIME])
    assert content == "let me look"
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "paris"}),
        ("get_time", {}),
    ]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)


def test_text_that_is_not_a_call_stays_content() -> None:
    for text in [
        "no calls here",
        "<tool_call>{not json}</tool_call>",
        '<tool_call>{"name": "unknown_fn", "arguments": {}}</tool_call>',
        '<tool_call>{"name": "get_time", "arguments": [1]}</tool_call>',
        '<tool_call>{"name": "get_time", "argu',  # cut off by max_tokens
    ]:
        assert toolcalls.parse("hermes", text, [WEATHER, TIME]) == (text, [])


def test_llama3_json_calls_are_the_whole_answer() -> None:
    text = (
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "tokyo"}}; '
        '{"name": "get_time", "parameters": {}}'
    )
    content, calls = toolcalls.parse("llama3_json", text, [WEATHER, TIME])
    assert content is None
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "tokyo"}),
        ("get_time", {}),
    ]
    assert toolcalls.parse("llama3_json", 'the answer is {"name": 1}', [WEATHER]) == (
        'the answer is {"name": 1}',
        [],
    )
    assert toolcalls.parse("llama3_json", '{"name": "get_time", "parameters": {}} and more', [TIME])[1] == []


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{"type": "web_search"}], "tools[0].type"),
        (["get_weather"], "tools[0].type"),
        ([{"type": "function"}], "tools[0].function"),
        ([{"type": "function", "function": {"name": "has space"}}], "tools[0].function.name"),
        ([WEATHER, WEATHER], "tools[1].function.name"),
        (
            [{"type": "function", "function": {"name": "f", "parameters": {"type": 12}}}],
            "tools[0].function.parameters",
        ),
        (
            [{"type": "function", "function": {"name": "f", "parameters": "object"}}],
            "tools[0].function.parameters",
        ),
    ],
)
def test_bad_tools_are_a_400_naming_the_field(tools: list[Any], param: str) -> None:
    with pytest.raises(errors.BadRequestError) as info:
        toolcalls.plan(tools, None, None, "hermes")
    assert info.value.param == param and info.value.message.startswith(param)


@pytest.mark.parametrize(
    ("choice", "param"),
    [
        ("sometimes", "tool_choice"),
        ({"type": "function", "function": {"name": "nope"}}, "tool_choice.function.name"),
        ({"type": "custom"}, "tool_choice"),
    ],
)
def test_a_bad_tool_choice_is_a_400_naming_it(choice: Any, param: str) -> None:
    with pytest.raises(errors.BadRequestError) as info:
        toolcalls.plan([WEATHER], choice, None, "hermes")
    assert info.value.param == param


def test_tool_choice_required_without_tools_is_refused() -> None:
    with pytest.raises(errors.BadRequestError):
        toolcalls.plan(None, "required", None, "hermes")
    assert toolcalls.plan(None, "auto", None, "hermes") is None


def test_the_forced_call_schema_takes_only_calls_to_the_allowed_functions() -> None:
    named = _plan({"type": "function", "function": {"name": "get_weather"}}).call_schema()
    jsonschema.validate({"name": "get_weather", "arguments": {"city": "paris"}}, named)
    for bad in (
        {"name": "get_time", "arguments": {}},
        {"name": "get_weather", "arguments": {"city": "rome"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, named)
    required = _plan("required").call_schema()
    jsonschema.validate({"name": "get_time", "arguments": {}}, required)
    llama = _plan("required", fmt="llama3_json").call_schema()
    jsonschema.validate({"name": "get_time", "parameters": {}}, llama)
    assert (
        _plan({"type": "function", "function": {"name": "get_time"}}).grammar()["param"]
        == "tools[1].function.parameters"
    )


def _stream(p: toolcalls.Plan, pieces: list[str]) -> tuple[str, str, list[toolcalls.Call]]:
    splitter = toolcalls.StreamSplitter(p)
    sent = "".join(splitter.feed(piece) for piece in pieces)
    rest, calls = splitter.finish()
    return sent, rest, calls


def test_streamed_content_stops_where_a_call_may_begin() -> None:
    call = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    pieces = ["hello ", "there <tool", "_call>", call[len("<tool_call>") :]]
    sent, rest, calls = _stream(_plan(), pieces)
    assert sent == "hello there " and rest == "" and [c.name for c in calls] == ["get_time"]
    sent, rest, calls = _stream(_plan(), ["a <to", "ol and more"])
    assert sent + rest == "a <tool and more" and calls == []


def test_a_forced_or_llama_call_is_held_whole() -> None:
    call = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    sent, _, calls = _stream(_plan("required"), [call[:5], call[5:]])
    assert sent == "" and [c.name for c in calls] == ["get_time"]
    sent, rest, calls = _stream(_plan(fmt="llama3_json"), [" {", '"name": "get_time", "parameters": {}}'])
    assert sent == "" and rest == "" and [c.name for c in calls] == ["get_time"]
    sent, rest, calls = _stream(_plan(fmt="llama3_json"), ["plain", " text"])
    assert sent == "plain text" and not calls


def test_parallel_false_keeps_the_first_call() -> None:
    two = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>' * 2
    assert len(_stream(_plan(parallel=False), [two])[2]) == 1
