"""Tiny models built on the spot (random weights, tokenizers trained on a few sentences).

Nothing is downloaded: configs are small, tokenizers come from the ``tokenizers`` library,
and everything is written with ``save_pretrained`` so the runtime loads it like any model.
"""

from __future__ import annotations

import json
import pathlib

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


def _bpe(vocab_size: int, specials: list[str]) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def build_llama(path: pathlib.Path) -> pathlib.Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>"]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(400, specials), bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
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
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _bert_tokenizer(path: pathlib.Path) -> object:
    from transformers import BertTokenizerFast

    words = sorted({w.strip(".,?!:;\"'{}[]()") for line in CORPUS for w in line.lower().split()} - {""})
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters), *words]
    path.mkdir(parents=True, exist_ok=True)
    vocab_file = path / "vocab.txt"
    vocab_file.write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    return BertTokenizerFast(vocab_file=str(vocab_file))


def _bert_config(tokenizer: object, **extra: object) -> object:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        **extra,
    )


def build_bert_embedding(path: pathlib.Path) -> pathlib.Path:
    import torch
    from transformers import BertModel

    tokenizer = _bert_tokenizer(path)
    torch.manual_seed(1)
    BertModel(_bert_config(tokenizer, architectures=["BertModel"])).save_pretrained(path)
    tokenizer.save_pretrained(path)  # type: ignore[attr-defined]
    return path


def build_cross_encoder(path: pathlib.Path) -> pathlib.Path:
    import torch
    from transformers import BertForSequenceClassification

    tokenizer = _bert_tokenizer(path)
    torch.manual_seed(2)
    config = _bert_config(tokenizer, num_labels=1, architectures=["BertForSequenceClassification"])
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)  # type: ignore[attr-defined]
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
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    trained = _bpe(300, [])
    model_json = json.loads(trained.to_str())["model"]  # type: ignore[attr-defined]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model_json["merges"]]
    tokenizer = WhisperTokenizer(vocab=model_json["vocab"], merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": WHISPER_SPECIALS})
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in WHISPER_SPECIALS}
    assert ids["<|notimestamps|>"] == max(tokenizer.all_special_ids)
    feature_extractor = WhisperFeatureExtractor(feature_size=80)
    torch.manual_seed(3)
    config = WhisperConfig(
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
    model = WhisperForConditionalGeneration(config)
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
    WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(path)
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
