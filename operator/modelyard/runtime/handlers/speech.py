"""The built-in speech handler: Whisper (``WhisperForConditionalGeneration`` + ``WhisperProcessor``).

Audio is cut into 30-second windows (Whisper's input size); each window is decoded with
timestamps and its segments are shifted by the window's start, so ``verbose_json`` carries
segment times for long audio too. ``task="translate"`` translates into English. Word
timestamps (``timestamp_granularities[]=word``) come from cross-attention alignment
(``return_token_timestamps``) and need ``alignment_heads`` in the model's generation config
(the OpenAI Whisper checkpoints have them); without them only segments are returned.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import torch

from modelyard.runtime import audio, errors, protocols
from modelyard.runtime.handlers import common

WINDOW_SECONDS = 30


class WhisperASR(common.Pretrained):
    capabilities = ["audio-transcription", "audio-translation"]
    thread_safe = False
    max_parallelism = 1

    def _load(self, hf_repo_id: str) -> None:
        options = self.options
        self.processor, self.model = common.load_pretrained(
            options,
            hf_repo_id,
            self.device,
            "WhisperForConditionalGeneration",
            tokenizer_class="WhisperProcessor",
        )
        self.multilingual = bool(getattr(self.model.generation_config, "is_multilingual", False))
        self._lock = threading.Lock()

    def transcribe(
        self,
        audio_path: str,
        *,
        language: str | None,
        prompt: str | None,
        temperature: float | None,
        task: Literal["transcribe", "translate"],
        timestamp_granularity: Literal["word", "segment"] | None,
        cancel_event: threading.Event | None = None,
    ) -> protocols.SpeechResult:
        with open(audio_path, "rb") as f:
            samples = audio.decode(f.read())
        return self.transcribe_samples(
            samples,
            language=language,
            prompt=prompt,
            temperature=temperature,
            task=task,
            cancel_event=cancel_event,
            words=timestamp_granularity == "word",
        )

    def _generate_kwargs(
        self, language: str | None, prompt: str | None, temperature: float | None, task: str
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"return_timestamps": True}
        if self.multilingual:
            kwargs["task"] = task
            if language:
                kwargs["language"] = language
        if temperature:
            kwargs.update(do_sample=True, temperature=temperature)
        if prompt:
            kwargs["prompt_ids"] = torch.as_tensor(self.processor.get_prompt_ids(prompt), device=self.device)
        return kwargs

    def transcribe_samples(
        self,
        samples: audio.Samples,
        *,
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
        task: Literal["transcribe", "translate"] = "transcribe",
        cancel_event: threading.Event | None = None,
        words: bool = False,
    ) -> protocols.SpeechResult:
        duration = samples.shape[0] / audio.SAMPLE_RATE
        window = WINDOW_SECONDS * audio.SAMPLE_RATE
        kwargs = self._generate_kwargs(language, prompt, temperature, task)
        words = words and bool(getattr(self.model.generation_config, "alignment_heads", None))
        if words:
            kwargs.update(return_token_timestamps=True, return_dict_in_generate=True)
        segments: list[protocols.Segment] = []
        word_list: list[protocols.Word] = []
        texts: list[str] = []
        for start in range(0, max(samples.shape[0], 1), window):
            if cancel_event is not None and cancel_event.is_set():
                break
            chunk = samples[start : start + window]
            offset = start / audio.SAMPLE_RATE
            chunk_len = chunk.shape[0] / audio.SAMPLE_RATE
            features = self.processor(
                chunk, sampling_rate=audio.SAMPLE_RATE, return_tensors="pt"
            ).input_features
            features = features.to(self.device, dtype=self.model.dtype)
            try:
                with self._lock, torch.inference_mode():
                    ids = self.model.generate(features, **kwargs)
            except ValueError as exc:
                if language and "language" in str(exc).lower():
                    raise errors.BadRequestError(f"language: {exc}", param="language") from exc
                raise
            sequence = ids["sequences"][0] if isinstance(ids, dict) else ids[0]
            if words and isinstance(ids, dict) and "token_timestamps" in ids:
                word_list += self._words(sequence, ids["token_timestamps"][0], offset, chunk_len)
            decoded = self.processor.tokenizer.decode(sequence, skip_special_tokens=True, output_offsets=True)
            text = str(decoded["text"] if isinstance(decoded, dict) else decoded).strip()
            texts.append(text)
            offsets = decoded.get("offsets", []) if isinstance(decoded, dict) else []
            for piece in offsets:
                begin, end = piece.get("timestamp", (0.0, chunk_len))
                begin = min(float(begin or 0.0), chunk_len)
                end = min(float(end if end is not None else chunk_len), chunk_len)
                segments.append(
                    protocols.Segment(
                        len(segments),
                        round(offset + begin, 2),
                        round(offset + max(begin, end), 2),
                        str(piece.get("text", "")).strip(),
                    )
                )
            if not offsets:
                segments.append(
                    protocols.Segment(len(segments), round(offset, 2), round(offset + chunk_len, 2), text)
                )
        return protocols.SpeechResult(
            text=" ".join(t for t in texts if t),
            language=language,
            duration=round(duration, 3),
            segments=segments,
            words=word_list,
        )

    def _words(self, sequence: Any, times: Any, offset: float, chunk_len: float) -> list[protocols.Word]:
        """Text tokens grouped into words (a leading space starts one), timed by their first token."""
        tokenizer = self.processor.tokenizer
        special = set(tokenizer.all_special_ids)
        first_timestamp = int(self.model.generation_config.no_timestamps_token_id) + 1
        pieces: list[tuple[str, float]] = []
        for token, time in zip(sequence.tolist(), times.tolist(), strict=False):
            if token in special or token >= first_timestamp:
                continue
            pieces.append((str(tokenizer.decode([token])), min(float(time), chunk_len)))
        grouped: list[tuple[str, float]] = []
        for piece, time in pieces:
            if not grouped or piece.startswith(" "):
                grouped.append((piece, time))
            else:
                grouped[-1] = (grouped[-1][0] + piece, grouped[-1][1])
        out = []
        for i, (word, start) in enumerate(grouped):
            end = grouped[i + 1][1] if i + 1 < len(grouped) else chunk_len
            out.append(
                protocols.Word(word.strip(), round(offset + start, 2), round(offset + max(start, end), 2))
            )
        return [w for w in out if w.word]
