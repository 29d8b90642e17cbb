"""Function calling on the built-in chat handler, over HTTP with the official client.

The tiny Llama (random weights) is built with a Hermes-style tool template
(``tinymodels.TOOL_CHAT_TEMPLATE``; the ``tool_client`` fixture). It cannot choose a tool, so
``tool_choice`` required or named makes the call: the answer is decoded under the grammar of
one call, and every sampled call parses and its arguments validate against the tool's
schema. The same model served with ``tool_call_parser="llama3_json"`` writes Llama 3's format
instead. The tiny Llama's plain
template renders no tools, so that model refuses ``tools``.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "city": {"enum": ["paris", "tokyo", "lima"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "metric": {"type": "boolean"},
    },
    "required": ["city", "days"],
}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "a forecast", "parameters": WEATHER_PARAMS},
}
TIME_PARAMS = {"type": "object", "properties": {"zone": {"enum": ["utc", "cet"]}}, "required": ["zone"]}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": TIME_PARAMS}}
SCHEMAS = {"get_weather": WEATHER_PARAMS, "get_time": TIME_PARAMS}
ASK = [{"role": "user", "content": "what is the weather in paris?"}]


def _valid(call: Any) -> dict[str, Any]:
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, SCHEMAS[call.function.name])
    assert call.type == "function" and call.id.startswith("call_")
    return arguments  # type: ignore[no-any-return]


@pytest.mark.parametrize("model", ["tools-hermes", "tools-llama3"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_required_call_parses_and_its_arguments_validate(tool_client: Any, model: str, seed: int) -> None:
    reply = tool_client.chat.completions.create(
        model=model, messages=ASK, tools=[WEATHER, TIME], tool_choice="required",
        temperature=1.0, seed=seed, max_tokens=200,
    )  # fmt: skip
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None and len(choice.message.tool_calls) == 1
    _valid(choice.message.tool_calls[0])


def test_a_named_function_is_the_one_called(tool_client: Any) -> None:
    for seed in (4, 5):
        reply = tool_client.chat.completions.create(
            model="tools-hermes", messages=ASK, tools=[WEATHER, TIME], seed=seed, temperature=1.0,
            tool_choice={"type": "function", "function": {"name": "get_time"}}, max_tokens=200,
        )  # fmt: skip
        (call,) = reply.choices[0].message.tool_calls
        assert call.function.name == "get_time"
        _valid(call)


def test_a_streamed_call_arrives_as_tool_call_deltas(tool_client: Any) -> None:
    stream = tool_client.chat.completions.create(
        model="tools-hermes", messages=ASK, tools=[WEATHER], tool_choice="required", stream=True,
        stream_options={"include_usage": True}, seed=6, temperature=1.0, max_tokens=200,
    )  # fmt: skip
    chunks = list(stream)
    deltas = [d for c in chunks for ch in c.choices for d in ch.delta.tool_calls or []]
    assert deltas[0].id and deltas[0].function.name == "get_weather" and deltas[0].type == "function"
    arguments = "".join(d.function.arguments or "" for d in deltas)
    jsonschema.validate(json.loads(arguments), WEATHER_PARAMS)
    assert not any(ch.delta.content for c in chunks for ch in c.choices)
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_the_history_s_calls_and_results_reach_the_prompt(tool_client: Any) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "lima", "days": 2}'},
    }
    turns = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 24 degrees, light wind from the west"},
    ]
    without = tool_client.chat.completions.create(
        model="tools-hermes", messages=ASK, tools=[WEATHER], max_tokens=1
    )
    with_results = tool_client.chat.completions.create(
        model="tools-hermes", messages=turns, tools=[WEATHER], max_tokens=1
    )
    assert with_results.usage.prompt_tokens > without.usage.prompt_tokens + 10


def test_tool_choice_none_and_auto_answer_with_text(tool_client: Any) -> None:
    for choice in ("none", "auto"):
        reply = tool_client.chat.completions.create(
            model="tools-hermes", messages=ASK, tools=[WEATHER], tool_choice=choice, max_tokens=20
        )
        assert reply.choices[0].finish_reason in ("stop", "length")
        assert not reply.choices[0].message.tool_calls


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"model": "tiny-llama"}, "tools"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 12}}}]},
            "tools[0].function.parameters",
        ),
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice.function.name"),
        ({"tool_choice": "always"}, "tool_choice"),
        ({"tool_choice": "required", "response_format": {"type": "json_object"}}, "response_format"),
        (
            {
                "tool_choice": "required",
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"not": {"type": "string"}}}}
                ],
            },
            "tools[0].function.parameters",
        ),
        (
            {
                "messages": [
                    *ASK,
                    {
                        "role": "assistant",
                        "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{oops"}}],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
    ],
)
def test_bad_tool_requests_are_a_400_naming_the_field(
    tool_client: Any, overrides: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {
        "model": "tools-hermes",
        "messages": ASK,
        "tools": [WEATHER],
        "max_tokens": 5,
        **overrides,
    }
    with pytest.raises(openai.BadRequestError) as info:
        tool_client.chat.completions.create(**body)
    assert info.value.body["param"] == param, info.value.body


def test_chat_without_tools_on_a_tool_model_answers_with_text(tool_client: Any) -> None:
    reply = tool_client.chat.completions.create(model="tools-hermes", messages=ASK, max_tokens=5)
    assert reply.choices[0].message.tool_calls is None and reply.choices[0].finish_reason in (
        "stop",
        "length",
    )
