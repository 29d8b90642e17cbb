"""``POST /v1/responses`` on the runtime, with the official client's ``responses`` API.

Text answers become a message item, forced calls (``tool_choice`` required) function_call
items whose arguments validate; the input takes items (messages, function_call,
function_call_output) and ``instructions``; streaming sends the Responses events in order and
the client assembles the same response from them. Nothing is stored, so
``previous_response_id`` is a 400 saying what to send instead.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

PARAMS = {
    "type": "object",
    "properties": {
        "city": {"enum": ["paris", "tokyo"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["city", "days"],
}
TOOL = {"type": "function", "name": "get_weather", "description": "a forecast", "parameters": PARAMS}


def test_a_text_answer_is_one_message_item_with_usage(tool_client: Any) -> None:
    response = tool_client.responses.create(
        model="tools-hermes", input="hello", instructions="be brief", max_output_tokens=8,
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    assert response.object == "response" and response.id.startswith("resp_")
    (item,) = response.output
    assert item.type == "message" and item.role == "assistant"
    assert response.output_text == item.content[0].text
    assert response.usage.output_tokens == 8 and response.usage.input_tokens > 0
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_a_required_call_is_a_function_call_item(tool_client: Any) -> None:
    for seed in (1, 2):
        response = tool_client.responses.create(
            model="tools-hermes", input=[{"role": "user", "content": "weather?"}], tools=[TOOL],
            tool_choice="required", temperature=1.0, extra_body={"seed": seed},
        )  # fmt: skip
        assert response.status == "completed"
        (call,) = response.output
        assert (
            call.type == "function_call" and call.name == "get_weather" and call.call_id.startswith("call_")
        )
        jsonschema.validate(json.loads(call.arguments), PARAMS)


def test_calls_and_their_outputs_in_the_input_reach_the_prompt(tool_client: Any) -> None:
    first: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "input_text", "text": "weather?"}]}]
    turns = [
        *first,
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "paris", "days": 1}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "rain all day long with strong wind"},
    ]
    short = tool_client.responses.create(model="tools-hermes", input=first, tools=[TOOL], max_output_tokens=1)
    long = tool_client.responses.create(model="tools-hermes", input=turns, tools=[TOOL], max_output_tokens=1)
    assert long.usage.input_tokens > short.usage.input_tokens + 10


def test_a_stream_sends_the_responses_events_in_order(tool_client: Any) -> None:
    events = list(
        tool_client.responses.create(
            model="tools-hermes",
            input="hi",
            max_output_tokens=6,
            stream=True,
            extra_body={"ignore_eos": True},
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].response.output[0].content[0].text == text
    assert events[-1].response.usage.output_tokens == 6


def test_a_streamed_call_ends_with_its_arguments(tool_client: Any) -> None:
    with tool_client.responses.stream(
        model="tools-hermes", input="weather?", tools=[TOOL], tool_choice="required", temperature=1.0
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.done" in kinds and kinds[-1] == "response.completed"
    (call,) = final.output
    jsonschema.validate(json.loads(call.arguments), PARAMS)


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "name": "f", "parameters": {"type": 12}}]}, "tools[0].parameters"),
        ({"input": [{"type": "computer_call_output", "call_id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input[0].content[0].type",
        ),
        ({"model": "tiny-llama", "tools": [TOOL]}, "tools"),
    ],
)
def test_bad_responses_requests_are_a_400_naming_the_field(
    tool_client: Any, overrides: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"model": "tools-hermes", "input": "hi", "max_output_tokens": 2, **overrides}
    with pytest.raises(openai.BadRequestError) as info:
        tool_client.responses.create(**body)
    assert info.value.body["param"] == param, info.value.body
