"""SamplingParams: built once from a request, given to a handler whole or as the document's
keywords; a parameter the client set that a handler cannot receive is a 400 naming it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from modelyard.api import openai as wire
from modelyard.runtime import errors, options, protocols, sampling

DEFAULTS = options.GenerationDefaults(temperature=0.7, top_p=0.9, max_tokens=64)


def _chat(**body: Any) -> wire.ChatCompletionRequest:
    return wire.ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], **body}
    )


def test_the_model_defaults_fill_what_the_request_leaves_out() -> None:
    p = sampling.from_request(_chat(), DEFAULTS)
    assert p == sampling.SamplingParams(max_tokens=64, temperature=0.7, top_p=0.9)
    assert p.set_by == {}
    p = sampling.from_request(_chat(temperature=0, top_p=0.5, max_tokens=9, seed=3, stop="##"), DEFAULTS)
    assert (p.temperature, p.top_p, p.max_tokens, p.seed, p.stop) == (0.0, 0.5, 9, 3, ("##",))
    assert set(p.set_by) == {"temperature", "top_p", "max_tokens", "seed", "stop"}


def test_each_field_remembers_the_request_field_that_set_it() -> None:
    p = sampling.from_request(_chat(max_completion_tokens=20, ignore_eos=True), DEFAULTS)
    assert (p.max_tokens, p.min_tokens) == (20, 20)
    assert p.set_by == {"max_tokens": "max_completion_tokens", "min_tokens": "ignore_eos"}
    p = sampling.from_request(_chat(min_tokens=500, stop=["", "a"]), DEFAULTS)
    assert p.min_tokens == 64  # never more than the budget
    assert p.stop == ("a",)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"stop": [str(i) for i in range(17)]}, "stop"),
        ({"min_tokens": -1}, "min_tokens"),
        ({"min_tokens": True}, "min_tokens"),
        ({"ignore_eos": "yes"}, "ignore_eos"),
    ],
)
def test_bad_values_are_refused_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.BadRequestError) as info:
        sampling.from_request(_chat(**body), DEFAULTS)
    assert info.value.param == param


def test_the_params_are_frozen() -> None:
    p = sampling.SamplingParams(max_tokens=5)
    with pytest.raises(AttributeError):
        p.seed = 1  # type: ignore[misc]


class Document:
    """A handler written against the model-server document: no seed, no min_new_tokens."""

    def generate(self, messages: Any, *, max_new_tokens: int, temperature: float, top_p: float,
                 stop: list[str] | None = None, cancel_event: Any = None) -> Any:  # fmt: skip
        return protocols.ChatGeneration(f"{max_new_tokens} {temperature} {top_p} {stop}", 1, 1)


class Whole:
    """A handler that takes the whole SamplingParams."""

    def generate(self, messages: Any, *, sampling_params: sampling.SamplingParams, **_: Any) -> Any:
        return protocols.ChatGeneration(repr(sampling_params.seed), 1, 1)


class Anything:
    def generate(self, messages: Any, **kwargs: Any) -> Any:
        return protocols.ChatGeneration(",".join(sorted(kwargs)), 1, 1)


def test_a_handler_receives_the_params_the_way_its_signature_asks() -> None:
    p = sampling.SamplingParams(max_tokens=5, seed=2, stop=("x",), set_by={"seed": "seed", "stop": "stop"})
    assert sampling.handler_kwargs(Whole().generate, p) == {"sampling_params": p}
    assert set(sampling.handler_kwargs(Anything().generate, p)) == set(sampling.LEGACY_KEYWORDS.values())
    unset = sampling.SamplingParams(max_tokens=5)
    assert sampling.handler_kwargs(Document().generate, unset) == {
        "max_new_tokens": 5,
        "temperature": 0.0,
        "top_p": 1.0,
        "stop": None,
    }
    with pytest.raises(errors.BadRequestError) as info:
        sampling.handler_kwargs(Document().generate, p)
    assert info.value.param == "seed"


class DocumentChat:
    """A document-style chat handler served over HTTP; it counts its calls."""

    capabilities = ["chat-completion"]

    def __init__(self) -> None:
        self.name = "document"
        self.calls = 0

    def generate(self, messages: Any, *, max_new_tokens: int, temperature: float, top_p: float,
                 stop: list[str] | None = None, cancel_event: Any = None) -> Any:  # fmt: skip
        self.calls += 1
        return protocols.ChatGeneration(f"{max_new_tokens} {stop}", 1, 1)

    def count_tokens(self, messages: Any, *, add_generation_prompt: bool = True) -> int:
        return 1


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"seed": 7}, "seed"), ({"ignore_eos": True}, "ignore_eos"), ({"min_tokens": 3}, "min_tokens")],
)
def test_a_parameter_the_handler_cannot_honour_is_a_400_naming_it(
    start_server: Any, extra: dict[str, Any], param: str
) -> None:
    handler = DocumentChat()
    srv = start_server({"document": handler}, options.ServerSettings(warmup=False))
    body = {"model": "document", "messages": [{"role": "user", "content": "x"}], **extra}
    for stream in (False, True):
        reply = requests.post(srv.url + "/v1/chat/completions", json={**body, "stream": stream}, timeout=30)
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error"
        assert param in error["message"]
    assert handler.calls == 0, "the handler ran for a request it cannot honour"
    # what it can honour still works, the model's defaults filling the rest
    ok = requests.post(
        srv.url + "/v1/chat/completions",
        json={
            "model": "document",
            "messages": [{"role": "user", "content": "x"}],
            "stop": ["##"],
            "max_tokens": 3,
        },
        timeout=30,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["choices"][0]["message"]["content"] == "3 ['##']"
