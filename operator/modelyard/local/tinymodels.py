"""Tiny models built on the spot (random weights, tokenizers trained on a few sentences).

No model hub is reachable from the tests or from ``modelyard quickstart``, so both build their
models here: configs are small, tokenizers come from the ``tokenizers`` library, and everything
is written with ``save_pretrained`` so the runtime loads it like any model. The weights are
random: a tiny chat model answers fluent-looking nonsense, which is all a plumbing check needs.

``transformers``' own annotations are partial (untyped constructors, generation-config
attributes set at run time), so this module reaches it through :func:`_transformers` as
``Any``; torch and tokenizers are imported inside the functions to keep imports light.
"""

from __future__ import annotations

import importlib
import json
import pathlib
from typing import Any

__all__ = [
    "CHAT_TEMPLATE",
    "CORPUS",
    "TOOL_CHAT_TEMPLATE",
    "WHISPER_SPECIALS",
    "build_bert_embedding",
    "build_cross_encoder",
    "build_llama",
    "build_whisper",
    "teach_replies",
    "wav_bytes",
]

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, how are you today?",
    "a cat sat on the mat and looked at the hat",
    "machine learning models serve predictions over an api",
    "kubernetes runs containers in pods on nodes",
    '{"name": "modelyard", "ok": true, "n": [1, 2, 3], "x": null}',
    "user: hi there\nassistant: hello! how can i help?",
    "0123456789 +-*/=.,:;!?()[]{}<>\"'",
] * 4

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

TOOL_CHAT_TEMPLATE = (
    "{% if tools %}<|system|>You may call these functions; write each call as "
    '<tool_call>{"name": ..., "arguments": {...}}</tool_call>'
    "{% for tool in tools %}\n{{ tool | tojson }}{% endfor %}</s>{% endif %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' and m['tool_calls'] is defined and m['tool_calls'] %}"
    "<|assistant|>{{ m['content'] or '' }}{% for c in m['tool_calls'] %}<tool_call>"
    "{{ {'name': c['function']['name'], 'arguments': c['function']['arguments']} | tojson }}"
    "</tool_call>{% endfor %}</s>"
    "{% elif m['role'] == 'tool' %}<|user|><tool_response>{{ m['content'] }}</tool_response></s>"
    "{% else %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
"""A Hermes-style template (as Qwen's): the tools in a system turn, calls in ``<tool_call>``
tags, tool results in ``<tool_response>``."""


def _transformers() -> Any:
    return importlib.import_module("transformers")


def _bpe(vocab_size: int, specials: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def build_llama(path: pathlib.Path, chat_template: str = CHAT_TEMPLATE) -> pathlib.Path:
    """A two-layer Llama with a byte-level BPE tokenizer and a chat template, saved at ``path``
    (:data:`TOOL_CHAT_TEMPLATE` for one that calls tools)."""
    import torch

    tf = _transformers()
    specials = ["<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>"]
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=_bpe(400, specials), bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = tf.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        architectures=["LlamaForCausalLM"],
    )
    tf.LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def teach_replies(path: pathlib.Path, pairs: list[tuple[str, str]], steps: int = 60) -> pathlib.Path:
    """Overfit a saved chat model on a few (user, assistant) turns, in place, so that greedy
    decoding answers those prompts with those replies and then ends its turn (``</s>``): a demo
    whose answer reads as a sentence. A few seconds on a quiet CPU for :func:`build_llama`'s model."""
    import torch

    tf = _transformers()
    tokenizer = tf.AutoTokenizer.from_pretrained(path)
    model = tf.AutoModelForCausalLM.from_pretrained(path)
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": user}, {"role": "assistant", "content": reply}], tokenize=False
        )
        for user, reply in pairs
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(path)
    return path


def _bert_tokenizer(path: pathlib.Path) -> Any:
    words = sorted({w.strip(".,?!:;\"'{}[]()") for line in CORPUS for w in line.lower().split()} - {""})
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters), *words]
    path.mkdir(parents=True, exist_ok=True)
    vocab_file = path / "vocab.txt"
    vocab_file.write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    return _transformers().BertTokenizerFast(vocab_file=str(vocab_file))


def _bert_config(tokenizer: Any, **extra: Any) -> Any:
    return _transformers().BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        **extra,
    )


def build_bert_embedding(path: pathlib.Path) -> pathlib.Path:
    """A two-layer BERT encoder (mean-pooled embeddings), saved at ``path``."""
    import torch

    tokenizer = _bert_tokenizer(path)
    torch.manual_seed(1)
    _transformers().BertModel(_bert_config(tokenizer, architectures=["BertModel"])).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_cross_encoder(path: pathlib.Path) -> pathlib.Path:
    """A two-layer BERT cross-encoder (one relevance logit), saved at ``path``."""
    import torch

    tokenizer = _bert_tokenizer(path)
    torch.manual_seed(2)
    config = _bert_config(tokenizer, num_labels=1, architectures=["BertForSequenceClassification"])
    _transformers().BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


WHISPER_SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|de|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
]


def build_whisper(path: pathlib.Path) -> pathlib.Path:
    """A one-layer Whisper with its processor and word-timestamp heads, saved at ``path``."""
    import torch

    tf = _transformers()
    trained = _bpe(300, [])
    model_json = json.loads(trained.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model_json["merges"]]
    tokenizer = tf.WhisperTokenizer(vocab=model_json["vocab"], merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": WHISPER_SPECIALS})
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in WHISPER_SPECIALS}
    assert ids["<|notimestamps|>"] == max(tokenizer.all_special_ids)
    feature_extractor = tf.WhisperFeatureExtractor(feature_size=80)
    torch.manual_seed(3)
    config = tf.WhisperConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=128,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        begin_suppress_tokens=None,
        suppress_tokens=None,
        architectures=["WhisperForConditionalGeneration"],
    )
    model = tf.WhisperForConditionalGeneration(config)
    gen = model.generation_config
    gen.decoder_start_token_id = ids["<|startoftranscript|>"]
    gen.eos_token_id = ids["<|endoftext|>"]
    gen.pad_token_id = ids["<|endoftext|>"]
    gen.no_timestamps_token_id = ids["<|notimestamps|>"]
    gen.is_multilingual = True
    gen.lang_to_id = {"<|en|>": ids["<|en|>"], "<|de|>": ids["<|de|>"]}
    gen.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    gen.max_initial_timestamp_index = 50
    gen.forced_decoder_ids = None
    gen.begin_suppress_tokens = None
    gen.suppress_tokens = None
    gen.max_length = 64
    gen.alignment_heads = [[0, 0], [0, 1]]  # cross-attention heads for word timestamps
    gen._from_model_config = False
    model.save_pretrained(path)
    tf.WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(path)
    return path


def wav_bytes(seconds: float = 1.0, rate: int = 16_000, freq: float = 440.0) -> bytes:
    """A sine tone as 16-bit PCM WAV."""
    import io
    import wave

    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buffer.getvalue()
