"""Per-participant listening: decoded Opus frames -> 16 kHz mono PCM -> VAD -> utterances.

Each remote participant gets its own ``ParticipantListener`` so every utterance is attributed to
the person who said it, even when people talk over each other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from meetbot.config import VadConfig
from meetbot.events import PCM16, STT_SAMPLE_RATE, Participant, SpeechStarted, Utterance
from meetbot.media.vad import Segment, VadSegmenter

log = logging.getLogger(__name__)


RECEIVE_BUFFER_FRAMES = 0
"""Frames the bot's jitter buffers hold before releasing one (aiortc's default is 4, 80 ms,
for smooth playout; the bot plays nothing and wants to hear the end of speech at once): none,
each packet is decoded as it arrives (``meetbot.transport.room.ArrivalBuffer``)."""
RECEIVE_BUFFER_S = 0.020 * RECEIVE_BUFFER_FRAMES


class FrameClock:
    """Maps a track's RTP-derived ``pts`` to a monotonic time.

    Frames can come out of the jitter buffer in bursts, so arrival time alone would smear
    utterance boundaries. The RTP clock keeps real time across silence (also with DTX), so
    ``pts`` plus the smallest offset seen between arrival and ``pts`` places every frame at the
    time it was released by the receiver. Subtracting ``buffer_delay_s`` (the receiver's own
    jitter-buffer hold) moves that back to when the participant actually spoke; a recorder that
    wants to know when a listener *heard* the audio keeps it at zero.
    """

    def __init__(self, buffer_delay_s: float = 0.0) -> None:
        self._offset: float | None = None
        self._buffer_delay_s = buffer_delay_s

    def place(self, pts_s: float, arrived_at: float) -> float:
        offset = arrived_at - self._buffer_delay_s - pts_s
        if self._offset is None or offset < self._offset:
            self._offset = offset
        return pts_s + self._offset


def pts_seconds(frame: av.AudioFrame, fallback: float) -> float:
    """A frame's presentation time in seconds (``fallback`` for a frame without one)."""
    if frame.pts is None or frame.time_base is None:
        return fallback
    return float(frame.pts * frame.time_base)


def as_audio_frame(frame: object) -> av.AudioFrame:
    """Remote audio tracks yield decoded audio frames; anything else is a wiring error."""
    if not isinstance(frame, av.AudioFrame):
        raise MediaStreamError(f"expected an audio frame, got {type(frame).__name__}")
    return frame


class ParticipantListener:
    """Owns the reading task for one participant's audio track."""

    def __init__(
        self,
        participant: Participant,
        track: MediaStreamTrack,
        config: VadConfig,
        on_utterance: Callable[[Utterance], None],
        on_speech_start: Callable[[SpeechStarted], None] | None = None,
        on_pause: Callable[[Utterance], None] | None = None,
    ) -> None:
        self.participant = participant
        self._track = track
        self._on_utterance = on_utterance
        self._on_speech_start = on_speech_start
        self._on_pause = on_pause
        self._segmenter = VadSegmenter(
            config, self._emit, self._speech_started,
            self._paused if on_pause is not None else None,
        )
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=STT_SAMPLE_RATE)
        self._clock = FrameClock(RECEIVE_BUFFER_S)
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._last_arrival: float | None = None
        self._last_frame_end = 0.0
        self._seconds_per_tick: float | None = None
        self.frames_received = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"listen:{self.participant.name}"
        )

    @property
    def speaking(self) -> bool:
        return self._segmenter.speaking

    def tick(self, now: float) -> None:
        """Called on the wall clock by the owner: ends utterances during silence/DTX gaps.

        Frame times are capture times (about a jitter buffer earlier than arrival), so the
        wall clock is first mapped onto that timeline: the time of the last frame plus the wall
        time elapsed since it arrived. While frames flow this equals the frame clock exactly;
        when they stop (DTX, a peer that vanished) it keeps running.
        """
        if self._last_arrival is None:
            return
        self._segmenter.tick(self._last_frame_end + (now - self._last_arrival))

    def end_turn(self, revision: int, now: float) -> bool:
        """End the current utterance now, if the speaker has said nothing since the pause
        that produced the utterance with ``revision`` (whose transcription reads as a
        finished sentence). Returns whether it ended; the utterance is delivered as usual."""
        if self._last_arrival is None:
            return False
        return self._segmenter.end_turn(revision, self._last_frame_end + (now - self._last_arrival))

    def hold_turn(self, revision: int, seconds: float) -> bool:
        """Wait ``seconds`` of silence, not the usual hangover, before ending the current
        utterance, unless the speaker went on since the pause with ``revision``."""
        return self._segmenter.hold(revision, seconds)

    async def stop(self) -> None:
        """Stop reading; an utterance in progress is delivered, not lost."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._segmenter.flush(time.monotonic())

    async def _run(self) -> None:
        try:
            while True:
                frame = as_audio_frame(await self._track.recv())
                self._on_frame(frame, time.monotonic())
        except MediaStreamError:
            log.info("audio track of %s ended", self.participant.name)
        finally:
            self._segmenter.flush(time.monotonic())

    def _on_frame(self, frame: av.AudioFrame, arrived_at: float) -> None:
        # This runs 50 times a second per participant, so it avoids what is slow in Python:
        # the time base (a Fraction, built anew on every access) is read once per track, and
        # the resampled samples are read straight from the frame's buffer.
        self.frames_received += 1
        if self._seconds_per_tick is None:
            self._seconds_per_tick = pts_seconds(frame, 0.0) / frame.pts if frame.pts else None
        if frame.pts is None or self._seconds_per_tick is None:
            pts_s = pts_seconds(frame, arrived_at)
        else:
            pts_s = frame.pts * self._seconds_per_tick
        frame_at = self._clock.place(pts_s, arrived_at)
        self._last_arrival = arrived_at
        self._last_frame_end = frame_at + frame.samples / frame.sample_rate
        for out in self._resampler.resample(frame):
            pcm = np.frombuffer(memoryview(out.planes[0]), dtype=np.int16, count=out.samples).copy()
            self._push(pcm, frame_at)

    def _push(self, pcm: PCM16, at: float) -> None:
        # Re-anchor on every frame so a DTX gap does not shift later audio in time.
        self._pending_at = at - len(self._pending) / STT_SAMPLE_RATE
        self._pending = np.concatenate((self._pending, pcm)) if len(self._pending) else pcm
        step = self._segmenter.frame_samples
        step_s = step / STT_SAMPLE_RATE
        offset = 0
        while len(self._pending) - offset >= step:
            self._segmenter.feed(self._pending[offset : offset + step], self._pending_at)
            self._pending_at += step_s
            offset += step
        self._pending = self._pending[offset:].copy()

    def _speech_started(self, at: float) -> None:
        if self._on_speech_start is not None:
            p = self.participant
            self._on_speech_start(SpeechStarted(p.id, p.name, at))

    def _utterance(self, segment: Segment) -> Utterance:
        p = self.participant
        return Utterance(
            participant_id=p.id,
            participant_name=p.name,
            started_at=segment.started_at,
            ended_at=segment.ended_at,
            detected_at=time.monotonic(),
            pcm=segment.pcm,
            revision=segment.revision,
        )

    def _emit(self, segment: Segment) -> None:
        self._on_utterance(self._utterance(segment))

    def _paused(self, segment: Segment) -> None:
        if self._on_pause is not None:
            self._on_pause(self._utterance(segment))
