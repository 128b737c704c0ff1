"""Small audio helpers shared by the speech engines: resampling and WAV files.

Engines speak different rates (Whisper wants 16 kHz, Piper makes 22.05 kHz, OpenAI speech is
24 kHz, WebRTC carries 48 kHz), so conversions happen at every edge. They go through
libswresample (PyAV, already a dependency for Opus) because it is band-limited, exact in length
and cheap: a few milliseconds per second of audio, far below a polyphase filter in numpy.
"""

from __future__ import annotations

import io
import os
import wave
from os import PathLike
from typing import BinaryIO

import av
import numpy as np

from meetbot.events import PCM16

WavSource = str | PathLike[str] | BinaryIO
"""A WAV file given by path or as an open binary file object."""


def _open_target(source: WavSource) -> str | BinaryIO:
    # ``wave.open`` only understands ``str`` paths and file objects, not ``Path``.
    return os.fspath(source) if isinstance(source, PathLike) else source


def _as_pcm16(pcm: PCM16) -> PCM16:
    array = np.asarray(pcm)
    if array.dtype != np.int16:
        raise TypeError(f"expected int16 PCM, got {array.dtype}")
    return np.ascontiguousarray(array.reshape(-1))


class StreamResampler:
    """Resamples one continuous int16 mono stream that arrives in pieces.

    Resampling each piece on its own restarts the filter and clicks at every boundary; this
    keeps the filter state between calls. Call :meth:`flush` at the end of the stream to get
    the samples still held back by the filter delay. Not thread-safe: one stream, one owner.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._resampler = (
            None
            if from_rate == to_rate
            else av.AudioResampler(format="s16", layout="mono", rate=to_rate)
        )

    def process(self, pcm: PCM16) -> PCM16:
        """Feeds ``pcm`` and returns whatever output is ready (possibly empty)."""
        pcm = _as_pcm16(pcm)
        if self._resampler is None:
            return pcm.copy()
        if len(pcm) == 0:
            return np.zeros(0, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.from_rate
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> PCM16:
        """Ends the stream and returns the samples held back by the filter."""
        if self._resampler is None:
            return np.zeros(0, dtype=np.int16)
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> PCM16:
        if not frames:
            return np.zeros(0, dtype=np.int16)
        parts = [np.asarray(f.to_ndarray(), dtype=np.int16).reshape(-1) for f in frames]
        return np.concatenate(parts)


def resample(pcm: PCM16, from_rate: int, to_rate: int) -> PCM16:
    """Resamples a whole int16 mono signal; the result has ``len * to_rate / from_rate`` samples.

    For a signal that arrives in pieces use :class:`StreamResampler` instead.
    """
    resampler = StreamResampler(from_rate, to_rate)
    out = resampler.process(pcm)
    tail = resampler.flush()
    return np.concatenate([out, tail]) if len(tail) else out


def read_wav(source: WavSource) -> tuple[PCM16, int]:
    """Reads a 16-bit PCM WAV file as mono int16 and its sample rate.

    Multi-channel audio is averaged down to mono; 8-bit and 32-bit integer files are scaled to
    16 bits, since test clips and uploads come in all of these.
    """
    try:
        with wave.open(_open_target(source), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a readable PCM WAV file: {exc}") from exc
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.int64) >> 16
    else:
        raise ValueError(f"unsupported WAV sample width: {width} bytes")
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels]
        samples = samples.reshape(-1, channels).mean(axis=1)
    mono = np.clip(np.round(samples), -32768, 32767).astype(np.int16)
    return mono, rate


def write_wav(target: WavSource, pcm: PCM16, rate: int) -> None:
    """Writes int16 mono samples as a 16-bit PCM WAV file."""
    pcm = _as_pcm16(pcm)
    with wave.open(_open_target(target), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype("<i2").tobytes())


def wav_bytes(pcm: PCM16, rate: int) -> bytes:
    """Encodes int16 mono samples as the bytes of a WAV file (for uploads)."""
    buffer = io.BytesIO()
    write_wav(buffer, pcm, rate)
    return buffer.getvalue()


def decode_wav(data: bytes) -> tuple[PCM16, int]:
    """Decodes the bytes of a WAV file (see :func:`read_wav`)."""
    return read_wav(io.BytesIO(data))


def pcm_from_bytes(data: bytes) -> PCM16:
    """Interprets raw little-endian s16 bytes as samples; the byte count must be even."""
    if len(data) % 2:
        raise ValueError(f"odd number of bytes in s16 PCM: {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)
