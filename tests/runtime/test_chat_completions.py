"""Chat completions through the official openai client: plain, streamed, stop, seed, defaults."""

from __future__ import annotations

from typing import Any

MESSAGES = [{"role": "user", "content": "hello"}]


def test_chat_completion_returns_text_and_usage(client: Any) -> None:
    reply = client.chat.completions.create(
        model="tiny-llama", messages=MESSAGES, max_tokens=8, temperature=0, extra_body={"ignore_eos": True}
    )
    assert reply.object == "chat.completion"
    assert reply.model == "tiny-llama"
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason == "length"
    assert reply.usage.completion_tokens == 8
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 8


def test_streamed_chunks_add_up_to_the_non_streamed_answer(client: Any) -> None:
    kwargs: dict[str, Any] = dict(
        model="tiny-llama", messages=MESSAGES, max_tokens=12, temperature=0, extra_body={"ignore_eos": True}
    )
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(
        client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # token by token


def test_stop_string_ends_the_answer_before_the_stop(client: Any) -> None:
    kwargs: dict[str, Any] = dict(
        model="tiny-llama", messages=MESSAGES, max_tokens=20, temperature=0, extra_body={"ignore_eos": True}
    )
    full = client.chat.completions.create(**kwargs).choices[0].message.content
    assert len(full) > 4
    stop = full[3:5]
    cut = client.chat.completions.create(stop=[stop], **kwargs).choices[0]
    assert cut.message.content == full[: full.index(stop)]
    assert cut.finish_reason == "stop"
    streamed = client.chat.completions.create(stop=stop, stream=True, **kwargs)
    assert (
        "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == full[: full.index(stop)]
    )


def test_same_seed_same_sample(client: Any) -> None:
    kwargs: dict[str, Any] = dict(
        model="tiny-llama", messages=MESSAGES, max_tokens=10, temperature=1.0, top_p=0.9
    )
    a = client.chat.completions.create(seed=7, **kwargs).choices[0].message.content
    b = client.chat.completions.create(seed=7, **kwargs).choices[0].message.content
    assert a == b


def test_model_defaults_apply_and_request_values_win(start_server: Any, handlers: dict[str, Any]) -> None:
    import openai

    from modelyard.runtime import options

    srv = start_server(
        {"tiny-llama": handlers["tiny-llama"]},
        generation={"tiny-llama": options.GenerationDefaults(temperature=0.0, max_tokens=3)},
    )
    c = openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
    default = c.chat.completions.create(
        model="tiny-llama", messages=MESSAGES, extra_body={"ignore_eos": True}
    )
    assert default.usage.completion_tokens == 3
    explicit = c.chat.completions.create(
        model="tiny-llama", messages=MESSAGES, max_tokens=6, extra_body={"ignore_eos": True}
    )
    assert explicit.usage.completion_tokens == 6


def test_completions_plain_streamed_and_echo(client: Any) -> None:
    kwargs: dict[str, Any] = dict(
        model="tiny-llama",
        prompt="the quick brown",
        max_tokens=6,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    whole = client.completions.create(**kwargs)
    assert whole.object == "text_completion"
    assert whole.usage.completion_tokens == 6
    streamed = list(client.completions.create(stream=True, **kwargs))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == whole.choices[0].text
    echoed = client.completions.create(echo=True, **kwargs)
    assert echoed.choices[0].text == "the quick brown" + whole.choices[0].text
    two = client.completions.create(**{**kwargs, "prompt": ["a cat", "the dog"]})
    assert [c.index for c in two.choices] == [0, 1]


def test_developer_and_system_messages_and_content_parts_are_accepted(client: Any) -> None:
    reply = client.chat.completions.create(
        model="tiny-llama",
        messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "you"}]},
        ],
        max_tokens=2,
    )
    assert reply.choices[0].message.role == "assistant"
