"""The built-in chat and completion handler: any ``AutoModelForCausalLM`` with its chat template.

Generation runs ``model.generate`` with one stopping criterion that does three jobs after every
token: it decodes the text so far and hands the new, safe part to ``on_token`` (streaming),
it ends the generation at a stop string, and it ends it when ``cancel_event`` is set (the
client went away). So a disconnect costs at most one more token of compute.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
import transformers

from modelyard.runtime import errors, protocols
from modelyard.runtime.handlers import common, streaming, structured

_FALLBACK_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


class _Watch(transformers.StoppingCriteria):
    """Per-token hook: stream text, honour stop strings and cancellation."""

    def __init__(
        self,
        decode: Callable[[Any], str],
        prompt_len: int,
        tracker: streaming.StopTracker,
        cancel_event: threading.Event | None,
        on_token: protocols.TokenCallback | None,
    ) -> None:
        self.decode = decode
        self.prompt_len = prompt_len
        self.tracker = tracker
        self.cancel_event = cancel_event
        self.on_token = on_token
        self.generated = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        new = input_ids[0, self.prompt_len :]
        self.generated = int(new.shape[0])
        if self.on_token is not None or self.tracker.stop:
            delta = self.tracker.update(self.decode(new))
            if delta and self.on_token is not None:
                self.on_token(delta)
        done = self.tracker.stopped or (self.cancel_event is not None and self.cancel_event.is_set())
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class TextChatModel:
    """Chat (``/v1/chat/completions``) and completion (``/v1/completions``) for causal LMs."""

    capabilities = ["chat-completion", "completion"]
    thread_safe = False
    max_parallelism = 1
    owned_by = "modelyard"
    model_class = "AutoModelForCausalLM"

    def __init__(
        self, hf_repo_id: str, device: str | None = None, cache_dir: str | None = None, **kwargs: Any
    ):
        options = common.HandlerOptions.from_kwargs(hf_repo_id, cache_dir, kwargs)
        self.name = options.name
        self.device = common.resolve_device(device)
        self.generation_defaults = options.generation_defaults
        self.supports_structured_outputs = (
            True if options.supports_structured_outputs is None else options.supports_structured_outputs
        )
        self.tokenizer, self.model = common.load_pretrained(
            options, hf_repo_id, self.device, self.model_class
        )
        config_len = getattr(self.model.config, "max_position_embeddings", None)
        self.max_model_len: int | None = options.max_model_len or config_len
        self._lock = threading.Lock()
        self._json_vocab: structured.JsonVocabulary | None = None

    # -- prompts -----------------------------------------------------------------------------

    def _chat_text(self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        template = None if getattr(self.tokenizer, "chat_template", None) else _FALLBACK_TEMPLATE
        text = self.tokenizer.apply_chat_template(
            list(messages),
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            chat_template=template,
        )
        return str(text)

    def _encode(self, text: str, *, special: bool) -> torch.Tensor:
        ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=special)["input_ids"]
        return ids.to(self.device)  # type: ignore[no-any-return]

    def count_tokens(self, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = True) -> int:
        text = self._chat_text(messages, add_generation_prompt)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- generation --------------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str] | None = None,
        cancel_event: threading.Event | None = None,
        on_token: protocols.TokenCallback | None = None,
        seed: int | None = None,
        response_format: dict[str, Any] | None = None,
        min_new_tokens: int | None = None,
    ) -> protocols.ChatGeneration:
        input_ids = self._encode(self._chat_text(messages), special=False)
        return self._run(
            input_ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=stop,
            cancel_event=cancel_event,
            on_token=on_token,
            seed=seed,
            response_format=response_format,
            min_new_tokens=min_new_tokens,
            param="messages",
        )

    def complete(
        self,
        prompt: str,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str] | None = None,
        cancel_event: threading.Event | None = None,
        on_token: protocols.TokenCallback | None = None,
        seed: int | None = None,
        min_new_tokens: int | None = None,
    ) -> protocols.ChatGeneration:
        return self._run(
            self._encode(prompt, special=True),
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=stop,
            cancel_event=cancel_event,
            on_token=on_token,
            seed=seed,
            response_format=None,
            min_new_tokens=min_new_tokens,
            param="prompt",
        )

    def _check_length(self, prompt_len: int, max_new_tokens: int, param: str) -> None:
        limit = self.max_model_len
        if limit is None:
            return
        if prompt_len >= limit:
            raise errors.BadRequestError(
                f"the prompt is {prompt_len} tokens; this model's maximum context length is {limit} tokens",
                param=param,
            )
        if prompt_len + max_new_tokens > limit:
            raise errors.BadRequestError(
                f"this model's maximum context length is {limit} tokens; the prompt ({prompt_len}) "
                f"plus max_tokens ({max_new_tokens}) is {prompt_len + max_new_tokens}",
                param="max_tokens",
            )

    def _decode(self, ids: Any) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _json_processor(self, prompt_len: int, max_new_tokens: int) -> Any:
        if self._json_vocab is None:
            self._json_vocab = structured.JsonVocabulary.from_tokenizer(self.tokenizer)
        return structured.JsonLogitsProcessor(self._json_vocab, prompt_len, max_new_tokens)

    def _run(
        self,
        input_ids: torch.Tensor,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str] | None,
        cancel_event: threading.Event | None,
        on_token: protocols.TokenCallback | None,
        seed: int | None,
        response_format: dict[str, Any] | None,
        min_new_tokens: int | None,
        param: str,
    ) -> protocols.ChatGeneration:
        prompt_len = int(input_ids.shape[1])
        self._check_length(prompt_len, max_new_tokens, param)
        if cancel_event is not None and cancel_event.is_set():
            return protocols.ChatGeneration("", prompt_len, 0, "cancelled")
        tracker = streaming.StopTracker(stop)
        watch = _Watch(self._decode, prompt_len, tracker, cancel_event, on_token)
        do_sample = temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": do_sample,
            "stopping_criteria": transformers.StoppingCriteriaList([watch]),
            "attention_mask": torch.ones_like(input_ids),
            "pad_token_id": self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id,
        }
        if do_sample:
            kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if min_new_tokens:
            kwargs["min_new_tokens"] = min(min_new_tokens, max_new_tokens)
        json_mode = response_format is not None and response_format.get("type") in (
            "json_object",
            "json_schema",
        )
        if json_mode:
            assert response_format is not None
            kwargs["logits_processor"] = transformers.LogitsProcessorList(
                [self._json_processor(prompt_len, max_new_tokens)]
            )
        with self._lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            output = self.model.generate(input_ids, **kwargs)
        new = output[0, prompt_len:]
        eos = self.tokenizer.eos_token_id
        hit_eos = bool(new.shape[0]) and eos is not None and int(new[-1]) == eos
        delta = tracker.finish(self._decode(new))
        if delta and on_token is not None:
            on_token(delta)
        count = int(new.shape[0])
        if cancel_event is not None and cancel_event.is_set():
            reason: protocols.FinishReason = "cancelled"
        elif tracker.stopped or hit_eos or count < max_new_tokens:
            reason = "stop"
        else:
            reason = "length"
        return protocols.ChatGeneration(tracker.text, prompt_len, count, reason)
