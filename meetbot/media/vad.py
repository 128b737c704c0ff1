"""Cuts one participant's 16 kHz PCM stream into utterances with webrtcvad.

Silence is judged on the wall clock, not by counting frames: with Opus DTX a silent participant
may send no frames at all, so ``tick(now)`` ends an utterance when no voiced audio has arrived
for ``end_ms``, whether or not frames kept coming.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import webrtcvad

from meetbot.config import VadConfig
from meetbot.events import PCM16, STT_SAMPLE_RATE


@dataclass(frozen=True)
class Segment:
    """Voiced audio between ``started_at`` and ``ended_at`` (monotonic seconds).

    ``revision`` counts the loud frames the utterance held when the segment was cut: a pause
    segment whose revision is still current means nothing was said since.
    """

    started_at: float
    ended_at: float
    detected_at: float
    pcm: PCM16
    revision: int = 0


_LOUD_FLOOR_RMS = 180.0
"""About -45 dBFS: below this a frame is silence, however quiet the speaker."""
_LOUD_REL = 0.01
"""-40 dB below the loudest frame of the utterance: the fading tail of a word, not speech.
Not less: the fricative that ends "launch" or "yes" is 20-30 dB below the vowels, and a pause
declared under it would transcribe "lunch"."""


class VadSegmenter:
    """State machine: idle -> speaking (after ``start_ms`` voiced) -> idle (after ``end_ms``).

    ``feed`` takes exactly one VAD frame (``frame_ms`` of audio) with the monotonic time at
    which that frame began. Callbacks fire synchronously from ``feed``/``tick``.
    """

    def __init__(
        self,
        config: VadConfig,
        on_segment: Callable[[Segment], None],
        on_speech_start: Callable[[float], None] | None = None,
        on_pause: Callable[[Segment], None] | None = None,
    ) -> None:
        if config.frame_ms not in (10, 20, 30):
            raise ValueError(f"VAD frame_ms must be 10, 20 or 30, not {config.frame_ms}")
        if not 0 <= config.aggressiveness <= 3:
            raise ValueError(f"VAD aggressiveness must be 0..3, not {config.aggressiveness}")
        self._config = config
        self._vad = webrtcvad.Vad(config.aggressiveness)
        self._on_segment = on_segment
        self._on_speech_start = on_speech_start
        self._on_pause = on_pause
        self._paused_reported = False
        self.frame_samples = STT_SAMPLE_RATE * config.frame_ms // 1000
        self._frame_s = config.frame_ms / 1000
        pre_roll_frames = max(1, config.pre_roll_ms // config.frame_ms)
        self._pre_roll: deque[tuple[float, PCM16]] = deque(maxlen=pre_roll_frames)
        self._voiced_run_start: float | None = None
        self._speaking = False
        self._started_at = 0.0
        self._last_voiced_end = 0.0
        self._frames: list[PCM16] = []
        self._voiced_frame_count = 0
        self._last_loud_end = 0.0
        self._peak_rms = 0.0
        self._loud_frames = 0
        self._hold_s: float | None = None

    @property
    def speaking(self) -> bool:
        return self._speaking

    def is_voiced(self, frame: PCM16) -> bool:
        return bool(self._vad.is_speech(frame.tobytes(), STT_SAMPLE_RATE))

    def feed(self, frame: PCM16, at: float) -> None:
        """Add one VAD frame that began at monotonic time ``at``."""
        if len(frame) != self.frame_samples:
            raise ValueError(f"expected {self.frame_samples} samples, got {len(frame)}")
        voiced = self.is_voiced(frame)
        if self._speaking:
            self._frames.append(frame)
            if voiced:
                self._last_voiced_end = at + self._frame_s
                self._voiced_frame_count = len(self._frames)
            if self._is_loud(frame):
                self._last_loud_end = at + self._frame_s
                self._paused_reported = False
                self._hold_s = None
            self.tick(at + self._frame_s)
            if self._speaking and at + self._frame_s - self._started_at >= (
                self._config.max_utterance_s
            ):
                self._finish(at + self._frame_s)
            return
        self._pre_roll.append((at, frame))
        if not voiced:
            self._voiced_run_start = None
            return
        if self._voiced_run_start is None:
            self._voiced_run_start = at
        if at + self._frame_s - self._voiced_run_start >= self._config.start_ms / 1000:
            self._begin(self._voiced_run_start, at)

    def tick(self, now: float) -> None:
        """End the current utterance if the wall clock shows ``end_ms`` without voice.

        Earlier, after ``pause_ms`` of silence, ``on_pause`` gets the utterance so far: work on
        it (transcription) can start while the end hangover runs; if the speaker goes on, the
        final utterance differs and that early work is discarded.
        """
        if not self._speaking:
            return
        silent = now - self.speech_end
        hangover = self._hold_s if self._hold_s is not None else self._config.end_ms / 1000
        if silent >= hangover:
            self._finish(now)
        elif (
            self._on_pause is not None
            and not self._paused_reported
            and silent >= self._config.pause_ms / 1000
        ):
            self._paused_reported = True
            segment = self._segment(now)
            if segment is not None:
                self._on_pause(segment)

    @property
    def speech_end(self) -> float:
        """Where the current utterance's sound stopped, for counting silence.

        The earlier of webrtcvad's last voiced frame and the last loud frame: webrtcvad keeps
        a fading word "voiced" for a while, and in a noisy room the energy never drops, so
        each covers the other's weak spot.
        """
        if self._peak_rms < _LOUD_FLOOR_RMS:
            return self._last_voiced_end  # a very quiet line: only webrtcvad can tell
        return min(self._last_voiced_end, self._last_loud_end)

    def end_turn(self, revision: int, now: float) -> bool:
        """End the utterance now if nothing loud was said since the pause segment with this
        ``revision`` was cut (its transcription showed a finished sentence). Returns whether
        it ended."""
        if not self._speaking or revision != self._loud_frames:
            return False
        if now - self.speech_end < self._config.pause_ms / 1000:
            return False
        self._finish(now)
        return True

    def hold(self, revision: int, seconds: float) -> bool:
        """Until the speaker goes on, end the utterance only after ``seconds`` of silence
        (not ``end_ms``): its transcription at the pause with this ``revision`` leaves the
        thought open. Returns whether that pause is still the current one."""
        if not self._speaking or revision != self._loud_frames:
            return False
        self._hold_s = seconds
        return True

    def flush(self, now: float) -> None:
        """End any utterance in progress (the participant left or the stream ended)."""
        if self._speaking:
            self._finish(now)

    def _is_loud(self, frame: PCM16) -> bool:
        samples = frame.astype(np.float32)
        rms = float(np.sqrt(np.dot(samples, samples) / len(samples)))
        self._peak_rms = max(self._peak_rms, rms)
        loud = rms >= max(_LOUD_FLOOR_RMS, self._peak_rms * _LOUD_REL)
        if loud:
            self._loud_frames += 1
        return loud

    def _begin(self, started_at: float, at: float) -> None:
        self._speaking = True
        self._started_at = started_at
        self._last_voiced_end = at + self._frame_s
        self._frames = [f for _, f in self._pre_roll]
        self._voiced_frame_count = len(self._frames)
        self._peak_rms = 0.0
        for frame_at, frame in self._pre_roll:
            if self._is_loud(frame):
                self._last_loud_end = frame_at + self._frame_s
        self._last_loud_end = max(self._last_loud_end, self._last_voiced_end)
        self._pre_roll.clear()
        self._voiced_run_start = None
        if self._on_speech_start is not None:
            self._on_speech_start(started_at)

    def _segment(self, now: float) -> Segment | None:
        """The utterance so far, trimmed after its last voiced frame; None if too short."""
        duration = self._last_voiced_end - self._started_at
        if duration * 1000 < self._config.min_utterance_ms:
            return None
        # Trailing silence after the last voiced frame carries no words: trim it, keeping a
        # little so the decay of the last phoneme is not cut.
        keep = self._voiced_frame_count + int(0.1 / self._frame_s)
        pcm = np.concatenate(self._frames[:keep]) if self._frames else np.zeros(0, np.int16)
        ended_at = self._last_voiced_end - energy_tail_s(self._frames[: self._voiced_frame_count])
        return Segment(self._started_at, ended_at, now, pcm, self._loud_frames)

    def _finish(self, now: float) -> None:
        self._speaking = False
        self._hold_s = None
        segment = self._segment(now)
        self._frames = []
        if segment is not None:
            self._on_segment(segment)


_TAIL_BLOCK = STT_SAMPLE_RATE // 100  # 10 ms
_TAIL_MAX_S = 0.3
_TAIL_FLOOR_RMS = 180.0  # about -45 dBFS
_TAIL_REL = 0.03  # -30 dB below the loudest block


def energy_tail_s(frames: list[PCM16]) -> float:
    """How much of the end of the voiced frames is really silence, in seconds.

    webrtcvad keeps calling the fading tail of a word "voiced" for several frames; measuring
    the energy of 10 ms blocks puts the end of speech where the sound actually stopped.
    """
    if not frames:
        return 0.0
    tail_samples = int(_TAIL_MAX_S * STT_SAMPLE_RATE)
    pcm = np.concatenate(frames[-(tail_samples // len(frames[0]) + 1) :]).astype(np.float32)
    n = len(pcm) // _TAIL_BLOCK
    if n == 0:
        return 0.0
    pcm = pcm[len(pcm) - n * _TAIL_BLOCK :]
    rms = np.sqrt(np.mean(pcm.reshape(n, _TAIL_BLOCK) ** 2, axis=1))
    threshold = max(_TAIL_FLOOR_RMS, float(rms.max()) * _TAIL_REL)
    loud = np.nonzero(rms >= threshold)[0]
    quiet_blocks = n - 1 - int(loud[-1]) if len(loud) else n
    return min(quiet_blocks * _TAIL_BLOCK / STT_SAMPLE_RATE, _TAIL_MAX_S)
