"""logprobs / top_logprobs (chat and legacy completions) and ``n`` choices in the transformers
engine: the logprobs are the model's own log-softmax at each step (checked against a forward
pass of the whole sequence, computed here), asked-for only (greedy text and work unchanged
otherwise), streamed with the tokens they belong to; ``n`` choices share one prefill, count
the prompt once, and are bounded by ``--max-n``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import torch

from modelyard.api import openai as wire
from modelyard.runtime import options, protocols, sampling
from modelyard.runtime.handlers import batchrow
from modelyard.runtime.serving import choices

MESSAGES = [{"role": "user", "content": "tell me about kubernetes pods"}]
TOL = 2e-4  # float32: the batch's cached KV vs one forward pass of the whole sequence


def test_requests_become_logprobs_and_n_parameters() -> None:
    defaults = options.GenerationDefaults(max_tokens=8)

    def chat(**body: Any) -> sampling.SamplingParams:
        req = wire.ChatCompletionRequest.model_validate({"model": "m", "messages": MESSAGES, **body})
        return sampling.from_request(req, defaults)

    def legacy(**body: Any) -> sampling.SamplingParams:
        return sampling.from_request(
            wire.CompletionRequest.model_validate({"model": "m", "prompt": "x", **body}), defaults
        )

    assert (chat().logprobs, chat().n, chat().set_by) == (None, 1, {})
    assert chat(logprobs=True).logprobs == 0
    p = chat(logprobs=True, top_logprobs=20, n=3)
    assert (p.logprobs, p.n) == (20, 3) and {"logprobs", "n"} <= set(p.set_by)
    assert chat(logprobs=False).logprobs is None
    assert (legacy().logprobs, legacy(logprobs=0).logprobs, legacy(logprobs=5, n=2).n) == (None, 0, 2)


def test_the_two_logprobs_shapes() -> None:
    lps = [
        protocols.TokenLogprob("Hé", -0.5, (("Hé", -0.5), ("x", -1.0))),
        protocols.TokenLogprob(" y", float("-inf"), (("z", -0.1),)),
    ]
    shaped = choices.chat(lps)
    assert shaped is not None and shaped["refusal"] is None
    first, second = shaped["content"]
    assert first == {
        "token": "Hé", "logprob": -0.5, "bytes": [72, 195, 169],
        "top_logprobs": [{"token": "Hé", "logprob": -0.5, "bytes": [72, 195, 169]},
                         {"token": "x", "logprob": -1.0, "bytes": [120]}],
    }  # fmt: skip
    assert second["logprob"] == choices.FLOOR  # JSON has no -inf
    assert choices.legacy(lps, 3) == {
        "tokens": ["Hé", " y"],
        "token_logprobs": [-0.5, choices.FLOOR],
        "top_logprobs": [{"Hé": -0.5, "x": -1.0}, {"z": -0.1, " y": choices.FLOOR}],
        "text_offset": [3, 5],
    }
    assert choices.legacy_end(lps, 3) == 7
    assert choices.chat(None) is None and choices.legacy(None) is None


def _prompt_ids(handler: Any, messages: Any = MESSAGES) -> list[int]:
    return [int(t) for t in handler._encode(handler._chat_text(messages), special=False)[0]]


def _reference(handler: Any, prompt: list[int], generated: list[int]) -> list[torch.Tensor]:
    """The log-softmax of the model's logits at each generated position: one forward pass over
    the prompt and the tokens generated, no cache."""
    ids = torch.tensor([prompt + generated])
    with torch.inference_mode():
        logits = handler.model(input_ids=ids).logits[0].float()
    steps = logits[len(prompt) - 1 : len(prompt) - 1 + len(generated)]
    return list(torch.log_softmax(steps, dim=-1))


def _run(handler: Any, params: sampling.SamplingParams, prompt: list[int]) -> batchrow.Sequence:
    seq = batchrow.Sequence(prompt=prompt, sampling=params, token_text=handler._token_text)
    handler.engine.run_many([seq])
    return seq


def _check_against_reference(handler: Any, seq: batchrow.Sequence, k: int) -> None:
    reference = _reference(handler, seq.prompt, seq.generated)
    kept = [(t, ref) for t, ref in zip(seq.generated, reference, strict=True) if t not in handler.engine.eos]
    assert seq.logprobs is not None and len(seq.logprobs) == len(kept) > 0
    ids_of: dict[str, list[int]] = {}  # a text may be several tokens' (byte tokens: U+FFFD)
    for i in range(int(reference[0].shape[0])):
        ids_of.setdefault(handler._token_text(i), []).append(i)
    for lp, (token, ref) in zip(seq.logprobs, kept, strict=True):
        assert lp.token == handler._token_text(token)
        assert lp.logprob == pytest.approx(float(ref[token]), abs=TOL)
        assert [v for _, v in lp.top] == pytest.approx(torch.topk(ref, k).values.tolist(), abs=TOL)
        for text, value in lp.top:  # each alternative is a token with that logprob
            assert any(abs(float(ref[i]) - value) <= TOL for i in ids_of[text]), (text, value)


def test_greedy_logprobs_are_the_models_log_softmax_and_the_chosen_token_leads(handlers: Any) -> None:
    handler = handlers["tiny-llama"]
    params = sampling.SamplingParams(max_tokens=24, logprobs=5)
    seq = _run(handler, params, _prompt_ids(handler))
    _check_against_reference(handler, seq, 5)
    assert seq.logprobs is not None
    for lp in seq.logprobs:
        values = [v for _, v in lp.top]
        assert values == sorted(values, reverse=True)
        assert lp.top[0] == (lp.token, lp.logprob)  # greedy: the chosen token is the most likely


def test_sampled_logprobs_are_before_temperature_top_p_and_min_tokens(handlers: Any) -> None:
    handler = handlers["tiny-llama"]
    params = sampling.SamplingParams(
        max_tokens=20, temperature=1.7, top_p=0.8, seed=11, min_tokens=20, logprobs=3
    )
    seq = _run(handler, params, _prompt_ids(handler))
    _check_against_reference(handler, seq, 3)


def test_logprobs_cost_nothing_unless_asked_and_change_no_text(handlers: Any, monkeypatch: Any) -> None:
    handler = handlers["tiny-llama"]
    calls = []
    real = torch.log_softmax

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "log_softmax", counting)
    plain = handler.generate(MESSAGES, sampling_params=sampling.SamplingParams(max_tokens=16, min_tokens=16))
    assert calls == [] and plain.logprobs is None
    asked = handler.generate(
        MESSAGES, sampling_params=sampling.SamplingParams(max_tokens=16, min_tokens=16, logprobs=2)
    )
    assert asked.text == plain.text
    assert len(calls) == 16 and asked.logprobs is not None and len(asked.logprobs) == 16


def test_n_choices_share_one_prefill_and_greedy_choices_are_the_same(slow_llama: Any) -> None:
    handler = slow_llama(0.0, prefix_cache_bytes=0)
    one = handler.generate(MESSAGES, sampling_params=sampling.SamplingParams(max_tokens=12, min_tokens=12))
    handler.rows.clear()
    many = handler.generate(
        MESSAGES, sampling_params=sampling.SamplingParams(max_tokens=12, min_tokens=12, n=4)
    )
    assert [g.text for g in many] == [one.text] * 4
    assert [g.index for g in many] == [0, 1, 2, 3]
    assert handler.rows[0] == 1  # the prompt prefilled once
    assert handler.rows[1:] == [4] * 11  # then four rows decode together


def _chat(server: Any, **body: Any) -> requests.Response:
    payload = {"model": "tiny-llama", "messages": MESSAGES, "max_tokens": 10, "temperature": 0, **body}
    return requests.post(server.url + "/v1/chat/completions", json=payload, timeout=60)


def test_chat_n_with_a_seed_repeats_differs_per_choice_and_counts_the_prompt_once(server: Any) -> None:
    body = {"temperature": 1.0, "seed": 5, "max_tokens": 16, "min_tokens": 16}
    single = _chat(server, **body).json()
    first = _chat(server, n=3, **body).json()
    again = _chat(server, n=3, **body).json()
    texts = [c["message"]["content"] for c in first["choices"]]
    assert [c["index"] for c in first["choices"]] == [0, 1, 2]
    assert texts == [c["message"]["content"] for c in again["choices"]]
    assert texts[0] == single["choices"][0]["message"]["content"]  # choice 0 keeps the seed
    assert len(set(texts)) == 3
    usage = first["usage"]
    assert usage["prompt_tokens"] == single["usage"]["prompt_tokens"]
    assert usage["completion_tokens"] == 3 * 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + 3 * 16


def test_chat_logprobs_shape_through_the_openai_client(client: Any) -> None:
    reply = client.chat.completions.create(
        model="tiny-llama", messages=MESSAGES, max_tokens=8, logprobs=True, top_logprobs=4, temperature=0,
        extra_body={"min_tokens": 8},
    )  # fmt: skip
    content = reply.choices[0].logprobs.content
    assert len(content) == 8
    for entry in content:
        assert entry.bytes == list(entry.token.encode("utf-8"))
        assert len(entry.top_logprobs) == 4 and entry.top_logprobs[0].token == entry.token
    bare = client.chat.completions.create(model="tiny-llama", messages=MESSAGES, max_tokens=4, logprobs=True)
    assert all(e.top_logprobs == [] for e in bare.choices[0].logprobs.content)
    assert (
        client.chat.completions.create(model="tiny-llama", messages=MESSAGES, max_tokens=4)
        .choices[0]
        .logprobs
        is None
    )


def _events(response: requests.Response) -> list[dict[str, Any]]:
    lines = [line[6:] for line in response.content.decode().split("\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_streamed_chat_n_with_logprobs_matches_the_whole_answer(server: Any) -> None:
    body = {"temperature": 0.9, "seed": 3, "max_tokens": 14, "n": 2, "logprobs": True, "top_logprobs": 2}
    whole = _chat(server, **body).json()
    streamed = _chat(server, stream=True, stream_options={"include_usage": True}, **body)
    events = _events(streamed)
    text: dict[int, str] = {0: "", 1: ""}
    tokens: dict[int, list[str]] = {0: [], 1: []}
    finished: dict[int, str] = {}
    roles = []
    for event in events[:-1]:
        (choice,) = event["choices"]
        delta, index = choice["delta"], choice["index"]
        if "role" in delta:
            roles.append(index)
        text[index] += delta.get("content", "")
        if choice["logprobs"] is not None:
            tokens[index] += [e["token"] for e in choice["logprobs"]["content"]]
            assert all(len(e["top_logprobs"]) == 2 for e in choice["logprobs"]["content"])
        if choice["finish_reason"]:
            finished[index] = choice["finish_reason"]
    assert roles == [0, 1]
    for choice in whole["choices"]:
        index = choice["index"]
        assert text[index] == choice["message"]["content"]
        assert tokens[index] == [e["token"] for e in choice["logprobs"]["content"]]
        assert finished[index] == choice["finish_reason"]
    assert events[-1]["choices"] == [] and events[-1]["usage"] == whole["usage"]


def _complete(server: Any, **body: Any) -> requests.Response:
    base = {"model": "tiny-llama", "prompt": "the quick brown fox", "temperature": 0}
    payload = {**base, "max_tokens": 9, "min_tokens": 9, **body}
    return requests.post(server.url + "/v1/completions", json=payload, timeout=60)


def test_completions_legacy_logprobs_plain_streamed_and_with_n(server: Any) -> None:
    whole = _complete(server, logprobs=3).json()
    (choice,) = whole["choices"]
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == 9
    assert lp["text_offset"] == [sum(len(t) for t in lp["tokens"][:i]) for i in range(9)]
    for token, value, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], strict=True):
        # 3 alternatives and the chosen token, fewer when their texts coincide (byte tokens: U+FFFD)
        assert top[token] == value and 1 <= len(top) <= 4 and max(top.values()) == value

    events = _events(_complete(server, logprobs=3, stream=True))
    pieces = [e["choices"][0] for e in events if e["choices"][0]["logprobs"] is not None]
    assert [t for p in pieces for t in p["logprobs"]["tokens"]] == lp["tokens"]
    assert [o for p in pieces for o in p["logprobs"]["text_offset"]] == lp["text_offset"]

    many = _complete(server, prompt=["a b", "c d"], n=2, logprobs=0).json()
    assert [c["index"] for c in many["choices"]] == [0, 1, 2, 3]
    assert all(len(c["logprobs"]["top_logprobs"][0]) == 1 for c in many["choices"])
    assert many["usage"]["completion_tokens"] == 4 * 9


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("chat", {"n": 9}, "n"),
        ("chat", {"n": 0}, "n"),
        ("chat", {"n": "2"}, "n"),
        ("chat", {"n": 2.0}, "n"),
        ("chat", {"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
        ("chat", {"top_logprobs": -1, "logprobs": True}, "top_logprobs"),
        ("chat", {"top_logprobs": 2}, "top_logprobs"),
        ("chat", {"top_logprobs": 2, "logprobs": False}, "top_logprobs"),
        ("chat", {"top_logprobs": 1.5, "logprobs": True}, "top_logprobs"),
        ("chat", {"logprobs": "yes"}, "logprobs"),
        ("chat", {"logprobs": 1}, "logprobs"),
        ("completions", {"logprobs": 6}, "logprobs"),
        ("completions", {"logprobs": -1}, "logprobs"),
        ("completions", {"logprobs": True}, "logprobs"),
        ("completions", {"logprobs": 2, "echo": True}, "logprobs"),
        ("completions", {"n": 100}, "n"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_bad_n_and_logprobs_are_400_naming_the_field(
    server: Any, route: str, body: dict[str, Any], param: str, stream: bool
) -> None:
    r = _chat(server, stream=stream, **body) if route == "chat" else _complete(server, stream=stream, **body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and param in error["message"], error


def test_max_n_bounds_n_and_a_handler_without_n_or_logprobs_refuses_them(
    start_server: Any, handlers: Any
) -> None:
    import custom_handlers

    settings = options.ServerSettings(host="127.0.0.1", port=0, max_n=2)
    custom = custom_handlers.SlowChat("slow", None, name="slow")
    server = start_server({"tiny-llama": handlers["tiny-llama"], "slow": custom}, settings)
    assert len(_chat(server, n=2).json()["choices"]) == 2
    r = _chat(server, n=3)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "n" and "at most 2" in error["message"] and "--max-n" in error["message"]
    for body, param in (({"n": 2}, "n"), ({"logprobs": True}, "logprobs")):
        r = _chat(server, model="slow", **body)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
