"""The built-in chat and completion handler: any ``AutoModelForCausalLM`` with its chat template.

Generation goes through the model's continuous-batching engine (:mod:`batchgen`): concurrent
requests decode together, each with its own :class:`~modelyard.runtime.sampling.SamplingParams`
(and, for ``response_format``, its own grammar processor, :mod:`structured`). After every token the
engine decodes the text so far and hands the new, safe part to ``on_token`` (streaming), ends
the generation at a stop string, and ends it when ``cancel_event`` is set (the client went
away). So a disconnect costs at most one more decode step.

``sampling_params.n`` > 1 runs that many sequences of the same prompt in the batch (prefilled
once) and returns their generations as a list. Choice ``i`` is seeded ``seed + i`` when the
request has a seed, so the choices differ yet repeat; greedy choices are all the same.

LoRA adapters load into and unload from the running model (:meth:`TextChatModel.load_adapter`,
:mod:`peftlora`); ``adapter=KEY`` generates with one of them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

import torch

from modelyard.api import openai
from modelyard.runtime import errors, protocols, sampling, toolcalls
from modelyard.runtime.handlers import batchgen, batchrow, common, peftlora, prefixcache, structured

_FALLBACK_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


class TextChatModel:
    """Chat (``/v1/chat/completions``) and completion (``/v1/completions``) for causal LMs."""

    capabilities = ["chat-completion", "completion"]
    thread_safe = True
    supports_logprobs = True
    supports_n = True
    owned_by = "modelyard"
    model_class = "AutoModelForCausalLM"

    def __init__(
        self,
        hf_repo_id: str,
        device: str | None = None,
        cache_dir: str | None = None,
        *,
        max_num_seqs: int = 32,
        kv_cache_bytes: int = 2 * 1024**3,
        prefix_cache_bytes: int = 512 * 1024**2,
        **kwargs: Any,
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
        self._text_of = common.text_decoder(self.tokenizer)
        self._token_texts: dict[int, str] = {}
        self.tool_format, self.tools_unsupported = toolcalls.detect(
            getattr(self.tokenizer, "chat_template", None), kwargs.get("tool_call_parser")
        )
        """How this model writes function calls (:mod:`modelyard.runtime.toolcalls`), or None
        and why it cannot (a request with ``tools`` gets a 400 saying so)."""
        config_len = getattr(self.model.config, "max_position_embeddings", None)
        self.max_model_len: int | None = options.max_model_len or config_len
        self._grammars: structured.Grammars | None = None
        self._grammars_lock = threading.Lock()
        self.max_parallelism = max(1, max_num_seqs)
        """The limiter lets this many requests run: the batch size."""
        self.adapters = peftlora.LoraSet(self.model, self.name)
        self.engine = batchgen.Engine(
            self.model,
            self._decode,
            _eos_ids(self.model, self.tokenizer),
            batchgen.EngineLimits(max_seqs=self.max_parallelism, kv_cache_bytes=kv_cache_bytes),
            prefixcache.PrefixCache(prefix_cache_bytes),
            self.device,
            self.adapters,
        )

    # -- adapters ----------------------------------------------------------------------------

    def load_adapter(self, key: str, path: str, *, max_rank: int) -> None:
        """Add the LoRA adapter at ``path`` under ``key`` (a 400 naming what is wrong with it)."""
        self.adapters.load(key, path, max_rank=max_rank)

    def unload_adapter(self, key: str) -> None:
        """Remove adapter ``key`` once the sequences using it have finished."""
        self.adapters.remove(key)

    def adapter_use(self) -> tuple[list[str], list[str]]:
        """Adapter keys in the running batch, and among the waiting sequences."""
        return self.engine.adapter_use()

    # -- prompts -----------------------------------------------------------------------------

    def _chat_text(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        template = None if getattr(self.tokenizer, "chat_template", None) else _FALLBACK_TEMPLATE
        extra: dict[str, Any] = {"tools": list(tools)} if tools else {}
        text = str(
            self.tokenizer.apply_chat_template(
                list(messages),
                tokenize=False,
                add_generation_prompt=add_generation_prompt and not continue_final_message,
                chat_template=template,
                **extra,
            )
        )
        return _open_final(text, messages[-1]) if continue_final_message else text

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
        sampling_params: sampling.SamplingParams,
        cancel_event: threading.Event | None = None,
        on_token: protocols.TokenCallback | None = None,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        adapter: str | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> protocols.ChatGeneration | list[protocols.ChatGeneration]:
        """``continue_final_message``: the last message is an assistant turn that the answer
        continues (vLLM's switch; the template is rendered without closing it). ``adapter``: a
        loaded adapter's key (None: the base model). ``tools``: the request's function tools,
        rendered by the chat template."""
        text = self._chat_text(messages, add_generation_prompt, continue_final_message, tools)
        input_ids = self._encode(text, special=False)
        return self._run(
            input_ids, sampling_params, cancel_event, on_token, param="messages", adapter=adapter
        )

    def complete(
        self,
        prompt: str,
        *,
        sampling_params: sampling.SamplingParams,
        cancel_event: threading.Event | None = None,
        on_token: protocols.TokenCallback | None = None,
        adapter: str | None = None,
    ) -> protocols.ChatGeneration | list[protocols.ChatGeneration]:
        ids = self._encode(prompt, special=True)
        return self._run(ids, sampling_params, cancel_event, on_token, param="prompt", adapter=adapter)

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
        return self._text_of(ids)

    def _token_text(self, token: int) -> str:
        """One token's own text, special tokens included (logprobs name every token); kept,
        as the vocabulary is (only the scheduler thread calls this)."""
        text = self._token_texts.get(token)
        if text is None:
            text = self._token_texts[token] = str(self.tokenizer.decode([token], skip_special_tokens=False))
        return text

    def _run(
        self,
        input_ids: torch.Tensor,
        params: sampling.SamplingParams,
        cancel_event: threading.Event | None,
        on_token: protocols.TokenCallback | None,
        *,
        param: str,
        adapter: str | None = None,
    ) -> protocols.ChatGeneration | list[protocols.ChatGeneration]:
        prompt_len = int(input_ids.shape[1])
        self._check_length(prompt_len, params.max_tokens, param)
        if cancel_event is not None and cancel_event.is_set():
            cancelled = [
                protocols.ChatGeneration("", prompt_len, 0, "cancelled", index=i) for i in range(params.n)
            ]
            return cancelled[0] if params.n == 1 else cancelled
        prompt = [int(t) for t in input_ids[0]]
        seqs = [
            batchrow.Sequence(
                prompt=prompt,
                sampling=_choice(params, i),
                cancel_event=cancel_event,
                on_token=on_token,
                processor=self._processor(params),
                index=i,
                token_text=None if params.logprobs is None else self._token_text,
                adapter=adapter,
            )
            for i in range(params.n)
        ]
        results = self.engine.run_many(seqs)
        return results[0] if params.n == 1 else results

    def _processor(self, params: sampling.SamplingParams) -> structured.GrammarProcessor | None:
        """The grammar one sequence decodes under: a forced tool call's, the response format's,
        or none."""
        if params.tool_call is not None:
            return self._structured().tool_processor(params.tool_call)
        if params.response_format is not None:
            return self._structured().processor(params.response_format)
        return None

    def _structured(self) -> structured.Grammars:
        with self._grammars_lock:  # made on first use: most deployments never ask for JSON
            if self._grammars is None:
                self._grammars = structured.Grammars(self.tokenizer, self.model, self.engine.eos)
            return self._grammars

    def engine_stats(self) -> protocols.EngineStats:
        e, c = self.engine, self.engine.cache.stats
        return protocols.EngineStats(
            running=e.running,
            waiting=e.waiting,
            kv_cache_bytes=e.kv_bytes,
            kv_cache_reserved_bytes=e.kv_reserved_tokens * e.bytes_per_token,
            kv_cache_budget_bytes=e.limits.kv_cache_bytes,
            prefix_cache_hits=c.hits,
            prefix_cache_misses=c.misses,
            prefix_cache_hit_tokens=c.hit_tokens,
            prefix_cache_query_tokens=c.query_tokens,
            prefix_cache_bytes=c.bytes,
        )


def _choice(params: sampling.SamplingParams, index: int) -> sampling.SamplingParams:
    """Choice ``index``'s parameters: its own seed (``seed + index``, wrapped into torch's range)."""
    if index == 0 or params.seed is None:
        return params
    seed = params.seed + index
    if seed > openai.SEED_MAX:
        seed -= 2**64
    return dataclasses.replace(params, seed=seed)


def _open_final(text: str, final: dict[str, Any]) -> str:
    """``text`` (the rendered conversation) cut right after the last message's content, so the
    model goes on writing that message. As transformers' ``continue_final_message`` does, but
    the content is matched as it is first (a prefix ending in a space keeps its space) and
    stripped only when the template stripped it."""
    content = final.get("content")
    if not isinstance(content, str) or not content.strip():
        raise errors.BadRequestError(
            "continue_final_message: the last message needs text content to continue", param="messages"
        )
    for piece in (content, content.strip()):
        at = text.rfind(piece)
        if at != -1:
            return text[: at + len(piece)]
    raise errors.BadRequestError(
        "continue_final_message: the chat template does not keep the last message's text", param="messages"
    )


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end a generation: the generation config's and the tokenizer's EOS."""
    found: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured, tokenizer.eos_token_id):
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, list | tuple):
            found.update(int(v) for v in value)
    return found
