"""vLLM's ``continue_final_message`` / ``add_generation_prompt``: the answer goes on writing the
last (assistant) message, as the gateway asks when it resumes a broken stream."""

from __future__ import annotations

from typing import Any

import openai
import pytest

MESSAGES = [{"role": "user", "content": "hello"}]


def test_the_last_message_is_rendered_open(handlers: dict[str, Any]) -> None:
    handler = handlers["tiny-llama"]
    messages = [*MESSAGES, {"role": "assistant", "content": "the quick "}]
    opened = handler._chat_text(messages, False, True)
    assert opened == "<|user|>hello</s><|assistant|>the quick "  # not closed, trailing space kept
    assert handler._chat_text(MESSAGES, False) == "<|user|>hello</s>"
    assert handler._chat_text(MESSAGES) == "<|user|>hello</s><|assistant|>"


def test_a_continued_answer_counts_the_open_message_as_prompt(client: Any) -> None:
    kwargs: dict[str, Any] = dict(
        model="tiny-llama", max_tokens=4, temperature=0, extra_body={"ignore_eos": True}
    )
    fresh = client.chat.completions.create(messages=MESSAGES, **kwargs)
    cont = client.chat.completions.create(
        messages=[*MESSAGES, {"role": "assistant", "content": "the quick brown"}],
        **{
            **kwargs,
            "extra_body": {
                "ignore_eos": True,
                "continue_final_message": True,
                "add_generation_prompt": False,
            },
        },
    )
    assert cont.choices[0].finish_reason == "length" and cont.usage.completion_tokens == 4
    assert cont.usage.prompt_tokens > fresh.usage.prompt_tokens  # the open message is part of it
    streamed = client.chat.completions.create(
        messages=[*MESSAGES, {"role": "assistant", "content": "the quick brown"}],
        stream=True,
        **{
            **kwargs,
            "extra_body": {
                "ignore_eos": True,
                "continue_final_message": True,
                "add_generation_prompt": False,
            },
        },
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == cont.choices[0].message.content


@pytest.mark.parametrize(
    ("messages", "extra", "param"),
    [
        (
            [*MESSAGES, {"role": "assistant", "content": "x"}],
            {"continue_final_message": True},
            "continue_final_message",
        ),
        (MESSAGES, {"continue_final_message": True, "add_generation_prompt": False}, "messages"),
        (
            [*MESSAGES, {"role": "assistant", "content": " "}],
            {"continue_final_message": True, "add_generation_prompt": False},
            "messages",
        ),
        (MESSAGES, {"continue_final_message": "yes"}, "continue_final_message"),
    ],
)
def test_contradictory_or_impossible_switches_are_a_400_naming_the_field(
    client: Any, messages: list[dict[str, str]], extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tiny-llama", messages=messages, max_tokens=2, extra_body=extra)
    body = caught.value.body
    assert isinstance(body, dict) and body.get("param") == param, body
