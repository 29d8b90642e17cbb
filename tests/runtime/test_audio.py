"""Transcription and translation of synthesised WAV audio through the openai client."""

from __future__ import annotations

import io
from typing import Any

import requests

from modelyard.local import tinymodels


def _wav(seconds: float = 1.5, rate: int = 22_050) -> io.BytesIO:
    f = io.BytesIO(tinymodels.wav_bytes(seconds, rate=rate))
    f.name = "tone.wav"
    return f


def test_transcription_json_and_text(client: Any) -> None:
    reply = client.audio.transcriptions.create(model="tiny-whisper", file=_wav(), language="en")
    assert isinstance(reply.text, str)
    text = client.audio.transcriptions.create(model="tiny-whisper", file=_wav(), response_format="text")
    assert isinstance(text, str)


def test_verbose_json_has_segments_with_timestamps(client: Any) -> None:
    reply = client.audio.transcriptions.create(
        model="tiny-whisper",
        file=_wav(2.0),
        response_format="verbose_json",
        timestamp_granularities=["segment"],
    )
    assert abs(reply.duration - 2.0) < 0.01
    assert reply.segments, "verbose_json must carry segments"
    for seg in reply.segments:
        assert 0.0 <= seg.start <= seg.end <= 2.0
    assert [s.id for s in reply.segments] == list(range(len(reply.segments)))


def test_translation_endpoint(client: Any) -> None:
    reply = client.audio.translations.create(
        model="tiny-whisper", file=_wav(), response_format="verbose_json"
    )
    assert reply.language == "english"
    assert isinstance(reply.text, str)


def test_srt_subtitles(server: Any) -> None:
    files = {"file": ("a.wav", tinymodels.wav_bytes(1.0))}
    r = requests.post(
        server.url + "/v1/audio/transcriptions",
        files=files,
        data={"model": "tiny-whisper", "response_format": "srt"},
        timeout=60,
    )
    assert r.status_code == 200
    assert "-->" in r.text


def test_bad_audio_is_a_400_naming_the_file(server: Any) -> None:
    files = {"file": ("a.mp3", b"not audio at all")}
    r = requests.post(
        server.url + "/v1/audio/transcriptions", files=files, data={"model": "tiny-whisper"}, timeout=30
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "file"
    r = requests.post(
        server.url + "/v1/audio/transcriptions",
        files={"file": ("a.wav", tinymodels.wav_bytes(0.5))},
        data={"model": "tiny-whisper", "response_format": "xml"},
        timeout=30,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"


def test_an_unknown_language_is_a_400_naming_it(server: Any) -> None:
    r = requests.post(
        server.url + "/v1/audio/transcriptions",
        files={"file": ("a.wav", tinymodels.wav_bytes(0.5))},
        data={"model": "tiny-whisper", "language": "klingon"},
        timeout=60,
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "language"


def test_word_timestamps_when_asked_for(client: Any) -> None:
    reply = client.audio.transcriptions.create(
        model="tiny-whisper",
        file=_wav(2.0),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert reply.words, "word granularity must return words"
    for word in reply.words:
        assert word.word and 0.0 <= word.start <= word.end <= 2.0
    assert [w.start for w in reply.words] == sorted(w.start for w in reply.words)
    assert reply.segments
