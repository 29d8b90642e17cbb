"""Reading uploaded audio into 16 kHz mono float32 samples, without an audio library.

WAV (PCM 8/16/24/32-bit, IEEE float) is read with the standard library; any other format is
handed to ``ffmpeg`` when it is on PATH, else refused with a message saying so.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import wave

import numpy as np
import numpy.typing as npt

from modelyard.runtime import errors

SAMPLE_RATE = 16_000
Samples = npt.NDArray[np.float32]


def resample(samples: Samples, rate: int, target: int = SAMPLE_RATE) -> Samples:
    """Linear-interpolation resampling (good enough for speech recognition front ends)."""
    if rate == target or samples.size == 0:
        return samples.astype(np.float32)
    duration = samples.shape[0] / rate
    n = max(1, round(duration * target))
    positions = np.linspace(0, samples.shape[0] - 1, n)
    return np.interp(positions, np.arange(samples.shape[0]), samples).astype(np.float32)


def _pcm(frames: bytes, width: int, channels: int) -> Samples:
    if width == 1:
        data = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        ints = (
            raw[:, 0].astype(np.int32)
            | (raw[:, 1].astype(np.int32) << 8)
            | (raw[:, 2].astype(np.int32) << 16)
        )
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = np.frombuffer(frames, dtype="<i4").astype(np.float32) / float(1 << 31)
    else:
        raise errors.BadRequestError(f"unsupported WAV sample width {width}", param="file")
    mono: Samples = data.reshape(-1, channels).mean(axis=1).astype(np.float32)
    return mono


def _float_wav(data: bytes) -> Samples:
    """WAVE_FORMAT_IEEE_FLOAT, which the ``wave`` module refuses."""
    pos, channels, rate, bits = 12, 1, SAMPLE_RATE, 32
    samples: Samples | None = None
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if chunk == b"fmt ":
            _fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
        elif chunk == b"data":
            dtype = "<f4" if bits == 32 else "<f8"
            samples = np.frombuffer(body, dtype=dtype).astype(np.float32).reshape(-1, channels).mean(axis=1)
        pos += 8 + size + (size & 1)
    if samples is None:
        raise errors.BadRequestError("WAV file has no data chunk", param="file")
    return resample(samples.astype(np.float32), rate)


def decode(data: bytes) -> Samples:
    """Audio bytes -> 16 kHz mono samples in [-1, 1]."""
    if not data:
        raise errors.BadRequestError("the audio file is empty", param="file")
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            with wave.open(io.BytesIO(data)) as w:
                frames = w.readframes(w.getnframes())
                return resample(_pcm(frames, w.getsampwidth(), w.getnchannels()), w.getframerate())
        except wave.Error as exc:
            if "unknown format: 3" in str(exc):
                return _float_wav(data)
            raise errors.BadRequestError(f"unreadable WAV file: {exc}", param="file") from exc
        except EOFError as exc:
            raise errors.BadRequestError("truncated WAV file", param="file") from exc
    return _ffmpeg(data)


def _ffmpeg(data: bytes) -> Samples:
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise errors.BadRequestError(
            "unsupported audio format: this runtime reads WAV; other formats need ffmpeg on PATH",
            param="file",
        )
    result = subprocess.run(
        [
            binary,
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            "pipe:0",
            "-f",
            "f32le",
            "-ac",
            "1",
            "-ar",
            "16000",
            "pipe:1",
        ],
        input=data,
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise errors.BadRequestError(
            f"cannot decode the audio file: {result.stderr.decode(errors='replace').strip()}", param="file"
        )
    samples: Samples = np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)
    return samples
