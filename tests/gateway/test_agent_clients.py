"""Agent client libraries, as users run them, through the gateway to the transformers runtime.

Real processes: ``modelyard gateway --routes FILE`` in front of ``modelyard runtime`` serving
the tiny Llama built with a Hermes-style tool template (``tinymodels.TOOL_CHAT_TEMPLATE``).
The tiny model cannot choose a tool, so every call here is made with ``tool_choice`` required
or a named function, which the runtime enforces with a grammar; structured outputs are
enforced the same way. What is asserted is the protocol: each library parses what comes back
without error, into its own types, and the call's arguments validate against the tool's schema.

- ``openai``: tools with streaming (``chat.completions.stream``, arguments parsed into the
  pydantic model of ``pydantic_function_tool``), ``chat.completions.parse`` with a pydantic
  ``response_format``, ``responses.create`` (text and a function call);
- ``langchain-openai``: ``ChatOpenAI.bind_tools`` (invoke and stream) and
  ``with_structured_output`` (json_schema and function_calling);
- ``openai-agents``: one agent turn whose function tool is called and whose result is the
  final output.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, Literal

import jsonschema
import openai
import pydantic
import pytest

from kit import Process, free_port, wait_serving
from modelyard.local import tinymodels

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


class Forecast(pydantic.BaseModel):
    """The forecast for a city."""

    city: Literal["paris", "tokyo", "lima"]
    days: int = pydantic.Field(ge=1, le=7)
    metric: bool


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("agents")
    model = tinymodels.build_llama(root / "llama", tinymodels.TOOL_CHAT_TEMPLATE)
    port, gateway_port = free_port(), free_port()
    runtime = Process(
        ["runtime", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
         "--model", str(model), "--served-name", "tiny", "--no-warmup"],
        root / "runtime.log",
        {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    routes = root / "routes.yaml"
    routes.write_text(
        "models:\n  - name: tiny\n    endpoints:\n      - name: default/tiny\n"
        f'        urls: ["http://127.0.0.1:{port}"]\n'
    )
    gw = Process(
        ["gateway", "--routes", str(routes), "--host", "127.0.0.1", "--port", str(gateway_port), "--no-auth"],
        root / "gateway.log",
    )
    try:
        runtime.start()
        gw.start()
        assert runtime.process is not None and gw.process is not None
        wait_serving(runtime.process, f"http://127.0.0.1:{port}/ready", 300, runtime.tail)
        wait_serving(gw.process, f"http://127.0.0.1:{gateway_port}/readyz", 60, gw.tail)
        yield f"http://127.0.0.1:{gateway_port}/v1"
    finally:
        gw.stop()
        runtime.stop()


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)


def test_openai_streams_a_tool_call_into_the_tool_s_pydantic_model(gateway: str) -> None:
    with _client(gateway).chat.completions.stream(
        model="tiny",
        messages=[{"role": "user", "content": "forecast for lima"}],
        tools=[openai.pydantic_function_tool(Forecast)],
        tool_choice="required",
        temperature=1.0,
        seed=3,
        max_tokens=200,
    ) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in kinds
    (call,) = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls" and call.function.name == "Forecast"
    assert isinstance(call.function.parsed_arguments, Forecast)


def test_openai_parse_fills_the_pydantic_model(gateway: str) -> None:
    completion = _client(gateway).chat.completions.parse(
        model="tiny",
        messages=[{"role": "user", "content": "forecast for paris"}],
        response_format=Forecast,
        temperature=1.0,
        seed=1,
        max_tokens=200,
    )
    assert isinstance(completion.choices[0].message.parsed, Forecast)


def test_openai_responses_create_returns_text_and_function_calls(gateway: str) -> None:
    client = _client(gateway)
    text = client.responses.create(
        model="tiny", input="hello", max_output_tokens=8, extra_body={"ignore_eos": True}
    )
    assert text.output_text and text.output[0].type == "message"
    tool = {
        "type": "function",
        "name": "forecast",
        "parameters": Forecast.model_json_schema(),
        "strict": False,
    }
    called = client.responses.create(
        model="tiny", input="forecast?", tools=[tool], tool_choice="required", temperature=1.0
    )  # type: ignore[call-overload]
    (call,) = called.output
    assert call.type == "function_call" and call.name == "forecast"
    Forecast.model_validate_json(call.arguments)


def _chat_model(gateway: str) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model="tiny", base_url=gateway, api_key="unused", temperature=1.0, max_retries=0, max_tokens=200
    )


def test_langchain_bind_tools_returns_tool_calls_that_validate(gateway: str) -> None:
    from langchain_core.tools import tool

    @tool
    def get_time(zone: Literal["utc", "cet"]) -> str:
        """The time in a zone."""
        return "noon"

    llm = _chat_model(gateway).bind_tools([Forecast, get_time], tool_choice="required")
    message = llm.invoke("what now?")
    (call,) = message.tool_calls
    schemas = {
        "Forecast": Forecast.model_json_schema(),
        "get_time": get_time.tool_call_schema.model_json_schema(),
    }
    jsonschema.validate(call["args"], schemas[call["name"]])

    named = _chat_model(gateway).bind_tools([Forecast, get_time], tool_choice="get_time")
    chunks = list(named.stream("what time is it?"))
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    (streamed,) = whole.tool_calls
    assert streamed["name"] == "get_time" and streamed["args"]["zone"] in ("utc", "cet")


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_with_structured_output_returns_the_model(gateway: str, method: str) -> None:
    structured = _chat_model(gateway).with_structured_output(Forecast, method=method)
    assert isinstance(structured.invoke("forecast for tokyo"), Forecast)


def test_an_openai_agent_turn_calls_its_function_tool(gateway: str) -> None:
    import agents

    agents.set_tracing_disabled(True)
    calls: list[dict[str, Any]] = []

    @agents.function_tool
    def get_weather(city: Literal["paris", "tokyo"], unit: Literal["c", "f"]) -> str:
        """The weather in a city."""
        calls.append({"city": city, "unit": unit})
        return f"sunny in {city}"

    client = openai.AsyncOpenAI(base_url=gateway, api_key="unused", max_retries=0, timeout=120)
    agent = agents.Agent(
        name="forecaster",
        instructions="Answer with the weather tool.",
        tools=[get_weather],
        model=agents.OpenAIResponsesModel(model="tiny", openai_client=client),
        model_settings=agents.ModelSettings(tool_choice="required", temperature=1.0, max_tokens=200),
        tool_use_behavior="stop_on_first_tool",
    )
    result = asyncio.run(agents.Runner.run(agent, "weather in paris?", max_turns=2))
    (args,) = calls
    jsonschema.validate(args, get_weather.params_json_schema)
    assert result.final_output == f"sunny in {args['city']}"
    called = [item for item in result.new_items if item.type == "tool_call_item"]
    assert len(called) == 1 and json.loads(called[0].raw_item.arguments) == args
