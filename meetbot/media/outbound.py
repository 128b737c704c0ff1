"""The bot's voice: one real-time clock and one Opus encoder, shared by every peer connection.

``VoiceSource`` owns the queued speech and a single pacing task that cuts it into 20 ms frames
at 48 kHz and encodes each frame once. Every peer connection gets its own ``VoiceTrack`` that
yields the same Opus packets (aiortc sends a track's ``av.Packet`` as it is), so all
participants hear the bot in sync, nothing is encoded ahead of real time, and speaking to ten
people costs one encoder, not ten.

While the bot has nothing to say it sends nothing, the way Opus DTX does: after a short tail of
silence (enough to push the last words out of a receiver's jitter buffer) the clock sleeps
until speech is queued, and the RTP clock skips the idle time so receivers keep real time. A
listening bot therefore costs no more on the outgoing side than a participant that is muted.
``flush()`` drops queued speech at once (with a short fade, so no click) for barge-in.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from meetbot.events import PCM16

log = logging.getLogger(__name__)

OUT_RATE = 48_000
FRAME_MS = 20
FRAME_SAMPLES = OUT_RATE * FRAME_MS // 1000
_FRAME_S = FRAME_MS / 1000
_TIME_BASE = fractions.Fraction(1, OUT_RATE)
_RESYNC_AFTER_S = 0.1
"""Further behind than this, the clock skips ahead instead of catching up in a burst."""
_MIN_GAP_S = 0.010
"""Catching up after a small delay never sends two frames closer together than this."""
_FADE_MS = 8
TAIL_FRAMES = 6
"""Silent frames sent after speech before the clock goes idle: aiortc's receivers release a
frame only once four more have arrived, so without them a reply's last 80 ms would wait there
until the bot spoke again."""
OPUS_BITRATE = 64_000
"""Mono speech. Browsers use about 32 kb/s for a voice, but the people listening may be
machines too (another meetbot, a transcriber): at 32 kb/s Whisper tiny.en hears the bot's
"launch" as "lunch" now and then; at 64 kb/s as often as at aiortc's default 96 kb/s stereo."""


def to_out_rate(pcm: PCM16, rate: int) -> PCM16:
    """Resample mono int16 audio to the track rate (48 kHz)."""
    if rate == OUT_RATE or len(pcm) == 0:
        return pcm.astype(np.int16, copy=False)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OUT_RATE)
    chunks = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


@dataclass
class PlaybackReport:
    """What became of one queued piece of speech (``tag``)."""

    tag: str
    queued_samples: int
    played_samples: int
    first_sent_at: float | None
    interrupted: bool


class _Clip:
    def __init__(self, tag: str, pcm: PCM16) -> None:
        self.tag = tag
        self.pcm = pcm
        self.pos = 0


class OpusPacketizer:
    """20 ms mono frames in, one Opus packet each out, stamped with the caller's RTP time.

    Digital silence (a participant that keeps sending while it says nothing, the tail after
    the bot's speech) is not encoded again every 20 ms: the packet the encoder makes for it
    is kept and reused, which costs nothing on the event loop.
    """

    def __init__(self, bitrate: int = OPUS_BITRATE) -> None:
        self._codec = self._new_codec(bitrate)
        silence = np.zeros(FRAME_SAMPLES, np.int16)
        quiet = self._new_codec(bitrate)
        for k in range(5):  # past the encoder's start-up packets
            packets = self._encode_with(quiet, silence, k * FRAME_SAMPLES)
        self._silence = bytes(packets[-1])

    @staticmethod
    def _new_codec(bitrate: int) -> av.AudioCodecContext:
        codec = av.CodecContext.create("libopus", "w")
        assert isinstance(codec, av.AudioCodecContext)
        codec.bit_rate = bitrate
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = OUT_RATE
        codec.time_base = _TIME_BASE
        codec.options = {"application": "voip"}
        return codec

    @staticmethod
    def _encode_with(codec: av.AudioCodecContext, pcm: PCM16, pts: int) -> list[av.Packet[Any]]:
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OUT_RATE
        frame.pts = pts
        frame.time_base = _TIME_BASE
        return codec.encode(frame)

    def encode(self, pcm: PCM16, pts: int) -> list[av.Packet[Any]]:
        if pcm.any():
            packets = self._encode_with(self._codec, pcm, pts)
        else:
            packets = [av.Packet(self._silence)]
        for packet in packets:
            # The encoder's own pts lags by its look-ahead; the RTP time is the frame's.
            packet.pts = pts
            packet.time_base = _TIME_BASE
        return packets


class VoiceSource:
    """Queued speech in, paced 20 ms Opus packets out to every subscribed ``VoiceTrack``.

    ``send_silence`` keeps the stream going while idle (as a browser without DTX does; the
    simulated participants use it); the bot's default is to go quiet.
    """

    def __init__(self, keep_timeline: bool = False, send_silence: bool = False) -> None:
        self._keep_timeline = keep_timeline
        self._send_silence = send_silence
        self._encoder = OpusPacketizer()
        self._wake = asyncio.Event()
        self.timeline: dict[str, list[tuple[int, float]]] = {}
        """With ``keep_timeline``: per tag, (sample offset in the clip, monotonic send time) of
        every frame, so a test knows exactly when each part of a clip left, even if the clock
        had to skip frames under load."""
        self._clips: deque[_Clip] = deque()
        self._tracks: set[VoiceTrack] = set()
        self._task: asyncio.Task[None] | None = None
        self._pts = 0
        self._fade: PCM16 | None = None
        self._first_sent: dict[str, float] = {}
        self._played: dict[str, int] = {}
        self._queued: dict[str, int] = {}
        self._done: dict[str, asyncio.Event] = {}
        self.frame_times: deque[float] = deque(maxlen=4096)
        """Monotonic times at which recent frames were handed to the tracks (for pacing checks)."""
        self.frame_lateness: deque[tuple[float, float]] = deque(maxlen=4096)
        """(send time, seconds after its slot on the 20 ms schedule) of recent frames: what a
        listener's jitter buffer has to absorb. Idle time between talkspurts is not late."""
        self.late_resyncs = 0
        self.talkspurts = 0
        """How many stretches of speech the clock has sent (each ends with a short tail)."""

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="voice-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for track in list(self._tracks):
            track.stop()

    def new_track(self) -> VoiceTrack:
        """A track for one more peer connection; it hears the same voice as all others."""
        track = VoiceTrack(self)
        self._tracks.add(track)
        return track

    def _detach(self, track: VoiceTrack) -> None:
        self._tracks.discard(track)

    # ---- speech ----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while speech is queued or playing."""
        return bool(self._clips) or self._fade is not None

    def queued_seconds(self) -> float:
        return sum(len(c.pcm) - c.pos for c in self._clips) / OUT_RATE

    def enqueue(self, pcm: PCM16, rate: int, tag: str = "") -> None:
        """Queue mono int16 speech at ``rate``; it plays after what is already queued."""
        out = to_out_rate(pcm, rate)
        if len(out) == 0:
            return
        self._clips.append(_Clip(tag, out))
        self._queued[tag] = self._queued.get(tag, 0) + len(out)
        self._played.setdefault(tag, 0)
        self._done.setdefault(tag, asyncio.Event()).clear()
        self._wake.set()

    async def wait_played(self, tag: str) -> None:
        """Until everything queued under ``tag`` so far has been played (or flushed)."""
        done = self._done.get(tag)
        if done is not None:
            await done.wait()

    def finish_tag(self, tag: str) -> PlaybackReport:
        """Forget the bookkeeping for ``tag`` and say how much of it was played."""
        report = PlaybackReport(
            tag=tag,
            queued_samples=self._queued.pop(tag, 0),
            played_samples=self._played.pop(tag, 0),
            first_sent_at=self._first_sent.pop(tag, None),
            interrupted=False,
        )
        done = self._done.pop(tag, None)
        if done is not None:
            done.set()
        return report

    def played_seconds(self, tag: str) -> float:
        return self._played.get(tag, 0) / OUT_RATE

    def first_sent_at(self, tag: str) -> float | None:
        return self._first_sent.get(tag)

    def flush(self) -> list[str]:
        """Drop all queued speech now (barge-in); the next few ms fade out instead of a click.

        Returns the tags that were cut short.
        """
        if not self._clips:
            return []
        cut = list(dict.fromkeys(c.tag for c in self._clips))
        current = self._clips[0]
        fade_len = OUT_RATE * _FADE_MS // 1000
        tail = current.pcm[current.pos : current.pos + fade_len].astype(np.float32)
        if len(tail):
            ramp = np.linspace(1.0, 0.0, len(tail), dtype=np.float32)
            self._fade = (tail * ramp).astype(np.int16)
            self._played[current.tag] = self._played.get(current.tag, 0) + len(tail)
        self._clips.clear()
        for tag in cut:
            self._mark_done(tag)
        return cut

    def _mark_done(self, tag: str) -> None:
        done = self._done.get(tag)
        if done is not None:
            done.set()

    # ---- the clock -------------------------------------------------------------------------

    def _next_frame(self) -> tuple[PCM16, list[tuple[str, int]]]:
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        tags: list[tuple[str, int]] = []
        if self._fade is not None:
            n = min(len(self._fade), FRAME_SAMPLES)
            out[:n] = self._fade[:n]
            filled = n
            self._fade = self._fade[n:] if n < len(self._fade) else None
        while filled < FRAME_SAMPLES and self._clips:
            clip = self._clips[0]
            n = min(FRAME_SAMPLES - filled, len(clip.pcm) - clip.pos)
            out[filled : filled + n] = clip.pcm[clip.pos : clip.pos + n]
            tags.append((clip.tag, clip.pos - filled))
            clip.pos += n
            filled += n
            self._played[clip.tag] = self._played.get(clip.tag, 0) + n
            if clip.pos >= len(clip.pcm):
                self._clips.popleft()
                if not any(c.tag == clip.tag for c in self._clips):
                    self._mark_done(clip.tag)
        return out, tags

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        last_sent = deadline - _FRAME_S
        tail = 0
        in_spurt = False
        while True:
            if self.busy:
                tail = TAIL_FRAMES
                if not in_spurt:
                    in_spurt = True
                    self.talkspurts += 1
            elif tail > 0 or self._send_silence:
                tail -= 1
            else:
                in_spurt = False
                deadline = await self._sleep_until_speech(deadline)
                last_sent = deadline - _FRAME_S
                continue
            now = loop.time()
            if now - deadline > _RESYNC_AFTER_S:
                # The loop was blocked: skip the missed frames rather than burst them out.
                missed = int((now - deadline) / _FRAME_S)
                self._pts += missed * FRAME_SAMPLES
                deadline += missed * _FRAME_S
                self.late_resyncs += 1
            wake = max(deadline, last_sent + _MIN_GAP_S)
            if wake > now:
                await asyncio.sleep(wake - now)
            pcm, tags = self._next_frame()
            sent_at = time.monotonic()
            for tag, offset in tags:
                self._first_sent.setdefault(tag, sent_at - offset / OUT_RATE)
                if self._keep_timeline:
                    self.timeline.setdefault(tag, []).append((offset, sent_at))
            self._publish(pcm)
            last_sent = loop.time()
            self.frame_times.append(sent_at)
            self.frame_lateness.append((sent_at, max(0.0, last_sent - deadline)))
            deadline += _FRAME_S

    async def _sleep_until_speech(self, deadline: float) -> float:
        """Idle until speech is queued; returns the new deadline (now), the RTP clock moved on
        by the idle time so that receivers place the next talkspurt in real time."""
        self._wake.clear()
        while not self.busy:
            await self._wake.wait()
            self._wake.clear()
        now = asyncio.get_running_loop().time()
        idle_frames = max(0, round((now - deadline) / _FRAME_S))
        self._pts += idle_frames * FRAME_SAMPLES
        return now

    def _publish(self, pcm: PCM16) -> None:
        pts = self._pts
        self._pts += FRAME_SAMPLES
        for packet in self._encoder.encode(pcm, pts):
            for track in self._tracks:
                track.offer(packet)


class VoiceTrack(MediaStreamTrack):
    """One peer connection's view of the bot's voice: the shared Opus packets.

    It holds at most two packets: if the peer connection's sender stalls, older packets are
    dropped rather than sent later in a burst.
    """

    kind = "audio"

    def __init__(self, source: VoiceSource) -> None:
        super().__init__()
        self._source = source
        self._packets: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue(maxsize=2)
        self.recv_times: deque[float] = deque(maxlen=4096)

    def offer(self, packet: av.Packet[Any]) -> None:
        if self._packets.full():
            # The sender fell behind: drop the oldest, never build a backlog.
            self._packets.get_nowait()
        self._packets.put_nowait(packet)

    async def recv(self) -> av.Packet[Any]:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._packets.get()
        if packet is None:
            raise MediaStreamError
        self.recv_times.append(time.monotonic())
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self._source._detach(self)
            if self._packets.full():
                self._packets.get_nowait()
            self._packets.put_nowait(None)
        super().stop()
