"""Simulated participants: headless people who join a room by URL, speak and listen.

A ``SimulatedParticipant`` sends speech (WAV or synthesized text) over a real WebRTC track,
paced in real time, and records what it hears from every other participant, each on its own
track, with timestamps. This is what the demo, the tests and the benchmarks use, and what users
use to test their own bots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from meetbot.events import PCM16, Participant
from meetbot.media.inbound import FrameClock, as_audio_frame, pts_seconds
from meetbot.media.outbound import OUT_RATE, VoiceSource
from meetbot.transport.room import RoomConnection
from meetbot.transport.signaling_client import parse_room_url

log = logging.getLogger(__name__)

RECORD_RATE = 16_000
AUDIBLE_DBFS = -45.0
"""A 20 ms frame louder than this counts as heard sound (Opus silence is far below)."""
_AUDIBLE_RMS = 32768 * 10 ** (AUDIBLE_DBFS / 20)


@dataclass(frozen=True)
class SpokenClip:
    """What a participant said and when, as monotonic times of its first and last voiced
    sample leaving the participant."""

    tag: str
    speech_start: float
    speech_end: float


def voiced_bounds(pcm: PCM16, rate: int) -> tuple[float, float]:
    """Offsets in seconds of the first and last audible 10 ms block of a clip."""
    block = rate // 100
    n = len(pcm) // block
    if n == 0:
        return 0.0, len(pcm) / rate
    blocks = pcm[: n * block].astype(np.float32).reshape(n, block)
    rms = np.sqrt(np.mean(blocks * blocks, axis=1))
    loud = np.nonzero(rms > _AUDIBLE_RMS)[0]
    if len(loud) == 0:
        return 0.0, len(pcm) / rate
    return float(loud[0] * block / rate), float((loud[-1] + 1) * block / rate)


def _sent_time(timeline: list[tuple[int, float]], offset_s: float) -> float:
    """When the sample ``offset_s`` into a clip left, from the frame that carried it."""
    pos = int(offset_s * OUT_RATE)
    best = timeline[0]
    for entry in timeline:
        if entry[0] > pos:
            break
        best = entry
    return best[1] + (pos - best[0]) / OUT_RATE


class Recorder:
    """Everything heard from one remote participant, placed on the monotonic clock."""

    def __init__(self, peer: Participant, track: MediaStreamTrack) -> None:
        self.peer = peer
        self._track = track
        self._clock = FrameClock()
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RECORD_RATE)
        self.chunks: list[tuple[float, PCM16]] = []
        self.loud_times: list[float] = []
        """Start times of 20 ms frames louder than ``AUDIBLE_DBFS``."""
        self.heard = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"rec:{peer.name}")

    async def _run(self) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = as_audio_frame(await self._track.recv())
                arrived = time.monotonic()
                pts_s = pts_seconds(frame, arrived)
                at = self._clock.place(pts_s, arrived)
                for out in self._resampler.resample(frame):
                    pcm = out.to_ndarray().reshape(-1).astype(np.int16)
                    self.chunks.append((at, pcm))
                    rms = float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2))) if len(pcm) else 0
                    if rms > _AUDIBLE_RMS:
                        self.loud_times.append(at)
                        self.heard.set()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def first_sound_after(self, t: float) -> float | None:
        for at in self.loud_times:
            if at >= t:
                return at
        return None

    def last_sound(self) -> float | None:
        return self.loud_times[-1] if self.loud_times else None

    def audio(self, start: float | None = None, end: float | None = None) -> PCM16:
        """The recording between two monotonic times, gaps (DTX, loss) filled with silence."""
        if not self.chunks:
            return np.zeros(0, dtype=np.int16)
        t0 = self.chunks[0][0] if start is None else start
        t1 = self.chunks[-1][0] + 0.02 if end is None else end
        total = max(0, int((t1 - t0) * RECORD_RATE))
        out = np.zeros(total, dtype=np.int16)
        for at, pcm in self.chunks:
            pos = round((at - t0) * RECORD_RATE)
            if pos + len(pcm) <= 0 or pos >= total:
                continue
            lo, hi = max(pos, 0), min(pos + len(pcm), total)
            out[lo:hi] = pcm[lo - pos : hi - pos]
        return out

    def save(self, path: Path) -> None:
        from meetbot.speech.audio import write_wav

        write_wav(path, self.audio(), RECORD_RATE)


class SimulatedParticipant:
    """A headless person in a room: speaks through a paced track, records every peer."""

    def __init__(self, room_url: str, name: str, kind: str = "person") -> None:
        self.name = name
        self.voice = VoiceSource(keep_timeline=True, send_silence=True)
        self.room = RoomConnection(
            parse_room_url(room_url),
            name,
            kind,
            make_track=lambda _peer: self.voice.new_track(),
            on_track=self._on_track,
            on_peer_left=self._on_peer_left,
            on_message=self._on_message,
        )
        self.recorders: dict[str, Recorder] = {}
        self.speaking: dict[str, bool] = {}
        """What each peer last announced with a ``speaking`` message (bots do)."""
        self._spoken = 0
        self.said: list[SpokenClip] = []

    async def join(self) -> None:
        self.voice.start()
        await self.room.join()

    async def leave(self) -> None:
        await self.room.leave()
        for rec in self.recorders.values():
            await rec.stop()
        await self.voice.stop()

    def recorder_for(self, name: str) -> Recorder | None:
        for rec in self.recorders.values():
            if rec.peer.name == name:
                return rec
        return None

    async def wait_for_peer(self, name: str, within_s: float = 10.0) -> Recorder:
        """Wait until the call with ``name`` is up: its audio track is here and the peer
        connection is connected (or audio already flows). The bot sends nothing until it
        speaks, so a connected call, not audio, is the sign that it can hear us."""
        deadline = time.monotonic() + within_s
        while True:
            rec = self.recorder_for(name)
            if rec is not None and (rec.chunks or self._connected_to(rec.peer.id)):
                return rec
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name} has no call with {name} after {within_s:.0f} s"
                )
            await asyncio.sleep(0.05)

    def _connected_to(self, peer_id: str) -> bool:
        link = self.room.links.get(peer_id)
        return link is not None and link.pc.connectionState == "connected"

    def start_speaking(self, pcm: PCM16, rate: int) -> str:
        """Queue speech now; returns a tag for ``wait_spoken``."""
        self._spoken += 1
        tag = f"{self.name}:{self._spoken}"
        self.voice.enqueue(pcm, rate, tag=tag)
        return tag

    async def speak(self, pcm: PCM16, rate: int) -> SpokenClip:
        """Say a clip and return when its last sample has left, with its voiced bounds."""
        tag = self.start_speaking(pcm, rate)
        return await self.wait_spoken(tag, pcm, rate)

    async def wait_spoken(self, tag: str, pcm: PCM16, rate: int) -> SpokenClip:
        await self.voice.wait_played(tag)
        self.voice.finish_tag(tag)
        lo, hi = voiced_bounds(pcm, rate)
        timeline = self.voice.timeline.pop(tag, [])
        clip = SpokenClip(tag, _sent_time(timeline, lo), _sent_time(timeline, hi))
        self.said.append(clip)
        return clip

    def stop_speaking(self) -> None:
        self.voice.flush()

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "speaking" and isinstance(message.get("from"), str):
            self.speaking[message["from"]] = message.get("speaking") is True

    def peer_says_speaking(self, name: str) -> bool | None:
        """Whether ``name`` announced it is speaking; None if it never said."""
        for peer_id, peer in self.room.participants.items():
            if peer.name == name and peer_id in self.speaking:
                return self.speaking[peer_id]
        return None

    def _on_track(self, peer: Participant, track: MediaStreamTrack) -> None:
        old = self.recorders.get(peer.id)
        if old is not None:
            asyncio.get_running_loop().create_task(old.stop())
        self.recorders[peer.id] = Recorder(peer, track)

    async def _on_peer_left(self, peer: Participant) -> None:
        rec = self.recorders.get(peer.id)
        if rec is not None:
            await rec.stop()


__all__ = ["OUT_RATE", "Recorder", "SimulatedParticipant", "SpokenClip", "voiced_bounds"]
