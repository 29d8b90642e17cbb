"""Structured outputs for the built-in chat handler: decoding under a JSON schema's grammar.

``response_format`` json_schema compiles the schema to a grammar with xgrammar (a context-free
grammar over the model's own tokens); json_object compiles the schema ``{"type": "object"}``.
Each request gets a :class:`GrammarProcessor`: before every token it advances the grammar's
matcher over the tokens picked since the last step, fills the bitmask of tokens the grammar
allows next and sets every other token's score to ``-inf``. Once the document is complete the
grammar allows only end-of-sequence. So every generation that ends on its own is JSON that
validates against the schema (required fields, enums, nesting, types, patterns); one cut off by
``max_tokens`` ends with ``finish_reason`` ``length``, as OpenAI's does.

Whitespace between tokens is not allowed (``any_whitespace=False``): a model cannot pad
forever, and the output is compact JSON. xgrammar's JSON strings admit raw control
characters (bytes below 0x20), which JSON forbids and ``json.loads`` rejects; compact JSON
never needs one, so tokens containing one are masked too. Compiled grammars are cached by
the compiler (up to ``CACHE_BYTES``), so a schema used again costs nothing. Works on CPU and
GPU (the mask is applied with torch).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import torch
import xgrammar

from modelyard.runtime import errors

log = logging.getLogger(__name__)

SCHEMA_PARAM = "response_format.json_schema.schema"
CACHE_BYTES = 64 * 1024**2
"""Bytes of compiled grammars a model keeps (xgrammar's default is unbounded)."""

UNENFORCED = (
    "not",
    "if",
    "then",
    "else",
    "contains",
    "minContains",
    "maxContains",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
)
"""Keywords xgrammar 0.2.8 compiles without enforcing (sampled answers broke ``not``, ``if``/
``then``, ``contains``, ``dependentRequired`` and ``uniqueItems``; the rest of each family is
assumed alike). A schema using one is refused rather than half enforced."""
_DATA = ("enum", "const", "default", "examples")
_NAMED = ("properties", "patternProperties", "$defs", "definitions")


def unenforced(schema: Any, path: str = "") -> str | None:
    """The path of the first keyword in ``schema`` the grammar would not enforce, or None."""
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            found = unenforced(item, f"{path}/{i}")
            if found:
                return found
        return None
    if not isinstance(schema, dict):
        return None
    for key, value in schema.items():
        here = f"{path}/{key}"
        if key in UNENFORCED or (key == "uniqueItems" and value):
            return here
        if key in _DATA:
            continue
        if key in _NAMED and isinstance(value, dict):  # names, then schemas
            children = [(f"{here}/{name}", child) for name, child in value.items()]
        else:
            children = [(here, value)]
        for where, child in children:
            found = unenforced(child, where)
            if found:
                return found
    return None


class GrammarProcessor:
    """Masks one sequence's scores to what its grammar allows next."""

    def __init__(
        self, compiled: xgrammar.CompiledGrammar, vocab_size: int, eos: list[int], control: torch.Tensor
    ) -> None:
        self.control = control
        self.matcher = xgrammar.GrammarMatcher(compiled)
        self.bitmask = xgrammar.allocate_token_bitmask(1, vocab_size)
        self.vocab_size = vocab_size
        self.eos = eos
        self.fed = 0
        self.broken = False

    def _advance(self, generated: list[int]) -> None:
        for token in generated[self.fed :]:
            if not self.broken and not self.matcher.accept_token(token):
                # cannot happen while every token is picked under the mask; end the sequence
                # rather than fail the batch it decodes with
                log.warning("grammar rejected token %d; ending the sequence", token)
                self.broken = True
        self.fed = len(generated)

    def __call__(self, generated: list[int], scores: torch.Tensor) -> torch.Tensor:
        """``scores`` [1, vocab] with every token the grammar forbids at ``-inf`` (a copy)."""
        self._advance(generated)
        scores = scores.clone()
        if self.broken or self.matcher.is_terminated():
            return self._end(scores)
        self.matcher.fill_next_token_bitmask(self.bitmask)
        xgrammar.apply_token_bitmask_inplace(
            scores, self.bitmask.to(scores.device), vocab_size=min(self.vocab_size, scores.shape[-1])
        )
        if self.control.device != scores.device:
            self.control = self.control.to(scores.device)
        scores[:, self.control] = float("-inf")
        if not bool(torch.isfinite(scores).any()):
            # a dead end: the vocabulary cannot spell what the grammar needs next (a tokenizer
            # without a space token, say); end the sequence rather than fail the batch
            log.warning("no token of the vocabulary continues the grammar; ending the sequence")
            self.broken = True
            return self._end(scores)
        return scores

    def _end(self, scores: torch.Tensor) -> torch.Tensor:
        """Only end-of-sequence."""
        ended = torch.full_like(scores, float("-inf"))
        ended[:, self.eos] = 0.0
        return ended


class Grammars:
    """One model's grammar compiler: its vocabulary, once, and the compiled grammars' cache."""

    def __init__(self, tokenizer: Any, model: Any, eos: set[int]) -> None:
        config = getattr(model.config, "text_config", None) or model.config
        self.vocab_size = int(getattr(config, "vocab_size", 0) or len(tokenizer))
        self.eos = sorted(eos)
        info = xgrammar.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=self.vocab_size, stop_token_ids=self.eos
        )
        self.compiler = xgrammar.GrammarCompiler(info, max_threads=1, cache_limit_bytes=CACHE_BYTES)
        self.control = torch.tensor(
            [
                i
                for i, piece in enumerate(info.decoded_vocab[: self.vocab_size])
                if i not in eos and any(b < 0x20 for b in piece)
            ],
            dtype=torch.long,
        )
        """Tokens with a raw control character: never valid in compact JSON."""

    def compile(self, response_format: Mapping[str, Any]) -> xgrammar.CompiledGrammar:
        """The grammar of a json_object or json_schema ``response_format``; a 400 naming the
        schema when it is one the grammar compiler cannot express."""
        if response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            keyword = unenforced(schema)
            if keyword:
                raise errors.BadRequestError(
                    f"{SCHEMA_PARAM}: {keyword} cannot be enforced while decoding "
                    f"(unsupported: {', '.join(UNENFORCED)}, uniqueItems)",
                    param=SCHEMA_PARAM,
                )
            try:
                return self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
            except Exception as exc:  # xgrammar raises RuntimeError or its own errors
                raise errors.BadRequestError(
                    f"{SCHEMA_PARAM}: cannot be enforced: {exc}", param=SCHEMA_PARAM
                ) from exc
        # json_object: any object (not strict: properties the schema does not name are allowed)
        return self.compiler.compile_json_schema(
            '{"type": "object"}', any_whitespace=False, strict_mode=False
        )

    def processor(self, response_format: Mapping[str, Any]) -> GrammarProcessor:
        return GrammarProcessor(self.compile(response_format), self.vocab_size, self.eos, self.control)

    def tool_processor(self, tool_call: Mapping[str, Any]) -> GrammarProcessor:
        """The grammar of exactly one function call (``tool_choice`` required or named):
        ``{"format", "schema", "param"}`` from :meth:`modelyard.runtime.toolcalls.Plan.grammar`;
        a hermes call is wrapped in its ``<tool_call>`` tags. A 400 naming the tool's
        parameters when the grammar cannot enforce them."""
        schema, param = tool_call["schema"], str(tool_call.get("param") or "tools")
        for where, parameters in tool_call.get("parts") or [(param, schema)]:
            keyword = unenforced(parameters)
            if keyword:
                raise errors.BadRequestError(
                    f"{where}: {keyword} cannot be enforced while decoding "
                    f"(unsupported: {', '.join(UNENFORCED)}, uniqueItems)",
                    param=where,
                )
        try:
            grammar = xgrammar.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False)
            if tool_call.get("format") == "hermes":
                grammar = xgrammar.Grammar.concat(
                    xgrammar.Grammar.from_ebnf('root ::= "<tool_call>"'),
                    grammar,
                    xgrammar.Grammar.from_ebnf('root ::= "</tool_call>"'),
                )
            compiled = self.compiler.compile_grammar(grammar)
        except Exception as exc:  # xgrammar raises RuntimeError or its own errors
            raise errors.BadRequestError(f"{param}: cannot be enforced: {exc}", param=param) from exc
        return GrammarProcessor(compiled, self.vocab_size, self.eos, self.control)
