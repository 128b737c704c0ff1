"""The processes a benchmark starts: the bot, a bare aiortc receiver, and simulated talkers.

``python3 -m benchmarks.roles ROLE [flags]`` reads JSON commands on stdin, one per line, and
answers each with one JSON line on stdout (``{"ok": true, ...}``); logs go to stderr. Keeping
each side in its own process is what makes CPU time and memory attributable: a ``measure``
command reports this process's own CPU seconds, split by thread, over a window.

Roles and their commands (all also take ``measure {seconds}`` and ``stop``):

- ``bot --persona null|echo|assistant [--probe] [--send none]``: one meetbot ``BotSession`` per
  joined room, all in this one process (``--send none``: its voice sends nothing). ``null``
  listens (decode, resample, VAD per participant) and does nothing with what it hears;
  ``echo`` replays every utterance; ``assistant`` is the full meeting assistant.
  ``join {url}``, ``wait_streams {n, within_s}``.
- ``bare --send none|silence|shared``: the floor: aiortc peer connections whose inbound
  tracks are read and dropped (``await track.recv()``), nothing else; optionally sending
  silence, encoded per peer or once for all. ``join {url}``, ``wait_streams``.
- ``talkers``: simulated people who send speech to the bot only (their mesh links to each other
  carry no media, so the machine is not loaded with traffic nobody measures).
  ``add {url, names, clips, mode}``, ``wait_hearing {within_s}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import os
import pstats
import random
import re
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from benchmarks.common import (
    CpuWindow,
    DrainStats,
    IdleTrack,
    SilenceTrack,
    drain,
    lag_growth_ms,
    lateness_summary,
    memory_mb,
    setup_logging,
)
from meetbot.events import PCM16, Participant
from meetbot.media.outbound import VoiceSource
from meetbot.transport.room import RoomConnection
from meetbot.transport.signaling_client import parse_room_url

log = logging.getLogger("benchmarks.roles")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

# ---- the command loop -------------------------------------------------------------------------


async def serve(handlers: dict[str, Handler], on_stop: Callable[[], Awaitable[None]]) -> None:
    """Answer commands from stdin until ``stop`` or end of input, then clean up."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = json.loads(line)
            name = cmd.pop("cmd")
            if name == "stop":
                await on_stop()
                _answer({"ok": True})
                return
            try:
                result = await handlers[name](cmd)
                _answer({"ok": True, **result})
            except Exception as exc:
                log.exception("command %s failed", name)
                _answer({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        await on_stop()


def _answer(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, default=float) + "\n")
    sys.stdout.flush()


class Measured:
    """The ``measure`` command shared by every role: CPU, memory, and role-specific numbers
    taken over the same window, optionally with a profile of the event-loop thread."""

    def __init__(self) -> None:
        self.before: list[Callable[[], None]] = []
        self.after: list[Callable[[float, float, float], dict[str, Any]]] = []

    async def measure(self, cmd: dict[str, Any]) -> dict[str, Any]:
        seconds = float(cmd.get("seconds", 10.0))
        # Timed by this thread's CPU clock: on a busy machine wall-clock time would charge a
        # function for the moments the thread was waiting for a core.
        profiler = cProfile.Profile(time.thread_time) if cmd.get("profile") else None
        for hook in self.before:
            hook()
        window = CpuWindow()
        t0 = time.monotonic()
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(seconds)
        if profiler is not None:
            profiler.disable()
        t1 = time.monotonic()
        out: dict[str, Any] = {"cpu": window.close(), "memory_mb": memory_mb()}
        for hook_after in self.after:
            out.update(hook_after(t0, t1, t1 - t0))
        if profiler is not None:
            out["profile"] = _profile_text(profiler, int(cmd.get("profile_top", 25)))
        return out


def _profile_text(profiler: cProfile.Profile, top: int) -> str:
    """The event-loop thread's functions by own time, then meetbot's own by cumulative time
    (what the bot adds on top of aiortc)."""
    parts = []
    for order, restrict, title in (("tottime", (top,), "by own time"),
                                   ("cumulative", (r"meetbot/", top), "meetbot, cumulative")):
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats(order).print_stats(*restrict)
        text = buf.getvalue()
        # Keep the table, not the preamble; shorten this machine's paths.
        text = text[text.find("   ncalls"):] if "   ncalls" in text else text
        text = re.sub(r"\S*/site-packages/", "", text)
        text = re.sub(r"\S*/lib/python3\.\d+/", "", text)
        text = re.sub(r"\S*/(meetbot|benchmarks)/", r"\1/", text)
        parts.append(f"-- {title} --\n{text.rstrip()}")
    return "\n\n".join(parts)


# ---- the bot ----------------------------------------------------------------------------------


class LagTrack(MediaStreamTrack):
    """Passes a remote track through, noting (arrival, RTP time) of every frame.

    If the event loop cannot keep up, frames wait in aiortc's receive queue and their arrival
    at the listener drifts later and later behind their RTP time: that drift is the inbound
    queue growing.
    """

    kind = "audio"

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self._inner = inner
        self.samples: deque[tuple[float, float]] = deque(maxlen=50 * 120)

    async def recv(self) -> Any:
        frame = await self._inner.recv()
        if frame.pts is not None and frame.time_base is not None:
            self.samples.append((time.monotonic(), float(frame.pts * frame.time_base)))
        return frame


def install_lag_probe() -> list[LagTrack]:
    """Make every ``ParticipantListener`` the bot creates read through a ``LagTrack``.

    meetbot has no public per-frame arrival hook, so the listener class the bot module uses is
    replaced, in this benchmark process only, by a subclass that wraps its track.
    """
    import meetbot.bot
    from meetbot.media.inbound import ParticipantListener

    probes: list[LagTrack] = []

    class ProbedListener(ParticipantListener):
        def __init__(self, participant: Participant, track: MediaStreamTrack,
                     *args: Any, **kwargs: Any) -> None:
            probe = LagTrack(track)
            probes.append(probe)
            super().__init__(participant, probe, *args, **kwargs)
            self.lag_probe = probe

    setattr(meetbot.bot, "ParticipantListener", ProbedListener)  # noqa: B010
    return probes


class BotRole:
    """Any number of meetbot sessions in this process, one per room."""

    def __init__(self, persona: str, probe: bool, name: str, data_dir: Path,
                 send: bool = True) -> None:
        self.persona = persona
        self.send = send
        self.name = name
        self.data_dir = data_dir
        self.probes = install_lag_probe() if probe else []
        self.bots: list[Any] = []
        self.measured = Measured()
        self._resyncs: dict[int, int] = {}
        self._frames: dict[int, int] = {}
        self.measured.before.append(self._mark)
        self.measured.after.append(self._report)

    async def join(self, cmd: dict[str, Any]) -> dict[str, Any]:
        from meetbot.bot import BotSession, QuietPersona
        from meetbot.config import BotConfig
        from meetbot.session import create_bot

        config = BotConfig(name=self.name, persona="echo" if self.persona == "null"
                           else self.persona, data_dir=self.data_dir)
        started = time.monotonic()
        if self.persona == "null":
            bot = BotSession(cmd["url"], config)
            bot.persona = QuietPersona()
        else:
            bot = await create_bot(cmd["url"], config)
        if not self.send:
            # Listening alone: each peer connection gets a track that never yields a frame
            # (the room asks the voice source for a track per peer when it connects).
            setattr(bot.voice, "new_track", IdleTrack)  # noqa: B010
        await bot.start()
        self.bots.append(bot)
        return {"sessions": len(self.bots), "join_s": time.monotonic() - started,
                "memory_mb": memory_mb()}

    async def wait_streams(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Until every session hears ``n`` participants (``n`` per session) with frames."""
        n, deadline = int(cmd["n"]), time.monotonic() + float(cmd.get("within_s", 30))
        while True:
            counts = [sum(1 for lis in b.participant_listeners.values() if lis.frames_received > 0)
                      for b in self.bots]
            if all(c >= n for c in counts):
                return {"streams": counts}
            if time.monotonic() > deadline:
                raise TimeoutError(f"sessions hear {counts} streams, wanted {n} each")
            await asyncio.sleep(0.1)

    def _mark(self) -> None:
        self._resyncs = {id(b): b.voice.late_resyncs for b in self.bots}
        self._frames = {id(lis): lis.frames_received
                        for b in self.bots for lis in b.participant_listeners.values()}

    def _report(self, t0: float, t1: float, seconds: float) -> dict[str, Any]:
        sessions = []
        for b in self.bots:
            late = [x for t, x in b.voice.frame_lateness if t0 <= t <= t1]
            fps = [(lis.frames_received - self._frames.get(id(lis), 0)) / seconds
                   for lis in b.participant_listeners.values()]
            sessions.append({
                "voice_lateness_ms": lateness_summary(late),
                "late_resyncs": b.voice.late_resyncs - self._resyncs.get(id(b), 0),
                "inbound_fps": [round(f, 1) for f in fps],
                "listeners": len(b.participant_listeners),
            })
        lags = [lag_growth_ms([s for s in p.samples if t0 <= s[0] <= t1])
                for p in self.probes if p.samples and p.samples[-1][0] >= t0]
        return {"sessions": sessions, "inbound_lag_ms": lags}

    async def stop(self) -> None:
        bots, self.bots = self.bots, []
        for bot in bots:
            with contextlib.suppress(Exception):
                await bot.stop()


# ---- the bare aiortc receiver -----------------------------------------------------------------


class BareRole:
    """Peer connections that only read and drop what they receive: aiortc's own floor."""

    def __init__(self, send: str, name: str) -> None:
        self.send = send
        self.name = name
        self._shared: VoiceSource | None = None
        self.rooms: list[RoomConnection] = []
        self.streams: list[DrainStats] = []
        self._drains: list[asyncio.Task[None]] = []
        self.measured = Measured()
        self._frames: dict[int, int] = {}
        self.measured.before.append(
            lambda: self._frames.update({id(s): s.frames for s in self.streams}))
        self.measured.after.append(self._report)

    def _track(self, _peer: Participant) -> MediaStreamTrack:
        if self.send == "silence":
            return SilenceTrack()
        if self.send == "shared":
            # meetbot's own voice clock: one encoder, the same packets to every peer.
            if self._shared is None:
                self._shared = VoiceSource(send_silence=True)
                self._shared.start()
            return self._shared.new_track()
        return IdleTrack()

    def _on_track(self, _peer: Participant, track: MediaStreamTrack) -> None:
        stats = DrainStats()
        self.streams.append(stats)
        self._drains.append(asyncio.get_running_loop().create_task(drain(track, stats)))

    async def join(self, cmd: dict[str, Any]) -> dict[str, Any]:
        room = RoomConnection(parse_room_url(cmd["url"]), self.name, "bot",
                              make_track=self._track, on_track=self._on_track)
        await room.join()
        self.rooms.append(room)
        return {"rooms": len(self.rooms), "memory_mb": memory_mb()}

    async def wait_streams(self, cmd: dict[str, Any]) -> dict[str, Any]:
        n, deadline = int(cmd["n"]) * len(self.rooms), time.monotonic() + float(
            cmd.get("within_s", 30))
        while sum(1 for s in self.streams if s.frames > 0) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sum(1 for s in self.streams if s.frames)} streams of {n}")
            await asyncio.sleep(0.1)
        return {"streams": [len(self.streams)]}

    def _report(self, t0: float, t1: float, seconds: float) -> dict[str, Any]:
        fps = [(s.frames - self._frames.get(id(s), 0)) / seconds for s in self.streams]
        return {"sessions": [{"inbound_fps": [round(f, 1) for f in fps],
                              "listeners": len(fps)}]}

    async def stop(self) -> None:
        for task in self._drains:
            task.cancel()
        for room in self.rooms:
            with contextlib.suppress(Exception):
                await room.leave()
        self.rooms = []
        if self._shared is not None:
            await self._shared.stop()


# ---- simulated talkers ------------------------------------------------------------------------


class Talker:
    """A person who sends speech to the bot only, and drains (and checks) what it hears.

    Like a browser (Chrome does not use Opus DTX by default) it keeps sending between clips,
    so the bot receives 50 frames a second from every talker."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.voice = VoiceSource(send_silence=True)
        self.room = RoomConnection(parse_room_url(url), name, "person",
                                   make_track=self._track, on_track=self._on_track)
        self.heard = DrainStats()
        self.bot_id: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected_to_bot(self) -> bool:
        """The call with the bot is up (it sends audio only when it speaks)."""
        link = self.room.links.get(self.bot_id) if self.bot_id is not None else None
        return link is not None and link.pc.connectionState == "connected"

    def _track(self, peer: Participant) -> MediaStreamTrack:
        return self.voice.new_track() if peer.kind == "bot" else IdleTrack()

    def _on_track(self, peer: Participant, track: MediaStreamTrack) -> None:
        if peer.kind == "bot":
            self.bot_id = peer.id
            self._tasks.append(asyncio.get_running_loop().create_task(
                drain(track, self.heard, inspect=True)))
        else:  # the mesh link to another talker: nothing comes, but read it like a client
            self._tasks.append(asyncio.get_running_loop().create_task(drain(track, DrainStats())))

    async def join(self) -> None:
        self.voice.start()
        await self.room.join()

    async def say(self, pcm: PCM16, rate: int) -> None:
        """Speak a clip and return when it has been sent."""
        tag = f"{self.name}:{time.monotonic()}"
        self.voice.enqueue(pcm, rate, tag=tag)
        duration = len(pcm) / rate
        await asyncio.sleep(duration)  # the clock plays it in real time; then wait out a lag
        for _ in range(200):
            if not self.voice.busy or self.voice.played_seconds(tag) >= duration - 0.001:
                break
            await asyncio.sleep(0.05)
        self.voice.finish_tag(tag)

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.room.leave()
        await self.voice.stop()


class TalkersRole:
    """Groups of talkers, one group per room; in ``turns`` mode a room's people take turns
    (a meeting), in ``overlap`` mode each talks on its own schedule (worst case for the bot)."""

    def __init__(self, seed: int) -> None:
        self.talkers: list[Talker] = []
        self._drivers: list[asyncio.Task[None]] = []
        self._random = random.Random(seed)
        self.measured = Measured()
        self._resyncs: dict[int, int] = {}
        self.measured.before.append(
            lambda: self._resyncs.update({id(t): t.voice.late_resyncs for t in self.talkers}))
        self.measured.after.append(self._report)

    async def add(self, cmd: dict[str, Any]) -> dict[str, Any]:
        from meetbot.speech.audio import read_wav

        clips = [read_wav(Path(p)) for p in cmd["clips"]]
        group = [Talker(cmd["url"], name) for name in cmd["names"]]
        for talker in group:
            await talker.join()
        self.talkers += group
        gap = (float(cmd.get("gap_min_s", 0.4)), float(cmd.get("gap_max_s", 1.2)))
        loop = asyncio.get_running_loop()
        if cmd.get("mode", "turns") == "turns":
            self._drivers.append(loop.create_task(self._turns(group, clips, gap)))
        else:
            for i, talker in enumerate(group):
                self._drivers.append(loop.create_task(self._solo(talker, clips, i, gap)))
        return {"talkers": len(self.talkers), "memory_mb": memory_mb()}

    async def _turns(self, group: list[Talker], clips: list[tuple[PCM16, int]],
                     gap: tuple[float, float]) -> None:
        i = self._random.randrange(len(clips))
        while True:
            for talker in group:
                await asyncio.sleep(self._random.uniform(*gap))
                await talker.say(*clips[i % len(clips)])
                i += 1

    async def _solo(self, talker: Talker, clips: list[tuple[PCM16, int]], start: int,
                    gap: tuple[float, float]) -> None:
        i = start
        while True:
            await asyncio.sleep(self._random.uniform(*gap))
            await talker.say(*clips[i % len(clips)])
            i += 1

    async def wait_hearing(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Until every talker's call with the bot is connected."""
        deadline = time.monotonic() + float(cmd.get("within_s", 30))
        while not all(t.connected_to_bot for t in self.talkers):
            if time.monotonic() > deadline:
                deaf = [t.name for t in self.talkers if not t.connected_to_bot]
                raise TimeoutError(f"no call with the bot at {deaf}")
            await asyncio.sleep(0.1)
        return {"talkers": len(self.talkers)}

    def _report(self, t0: float, t1: float, seconds: float) -> dict[str, Any]:
        worst = {"max": 0.0, "p99": 0.0, "over_20ms": 0}
        for t in self.talkers:
            late = lateness_summary([x for at, x in t.voice.frame_lateness if t0 <= at <= t1])
            worst["max"] = max(worst["max"], late["max"])
            worst["p99"] = max(worst["p99"], late["p99"])
            worst["over_20ms"] += int(late["over_20ms"])
        resyncs = sum(t.voice.late_resyncs - self._resyncs.get(id(t), 0) for t in self.talkers)
        heard_loud = int(np.sum([t.heard.loud_frames for t in self.talkers]))
        return {"talker_voice_lateness_ms": worst, "talker_resyncs": resyncs,
                "loud_frames_heard_from_bot": heard_loud}

    async def stop(self) -> None:
        for task in self._drivers:
            task.cancel()
        for talker in self.talkers:
            await talker.leave()
        self.talkers = []


# ---- entry point ------------------------------------------------------------------------------


async def _main(args: argparse.Namespace) -> None:
    role: Any
    if args.role == "bot":
        data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="meetbot-bench-notes-"))
        role = BotRole(args.persona, args.probe, args.name, data_dir,
                       send=args.send != "none")
        handlers: dict[str, Handler] = {"join": role.join, "wait_streams": role.wait_streams}
    elif args.role == "bare":
        role = BareRole(args.send or "none", args.name)
        handlers = {"join": role.join, "wait_streams": role.wait_streams}
    else:
        role = TalkersRole(args.seed)
        handlers = {"add": role.add, "wait_hearing": role.wait_hearing}
    handlers["measure"] = role.measured.measure
    stopped = False

    async def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            await role.stop()

    _answer({"ok": True, "ready": True, "pid": os.getpid(), "memory_mb": memory_mb()})
    await serve(handlers, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.roles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=("bot", "bare", "talkers"))
    parser.add_argument("--persona", choices=("null", "echo", "assistant"), default="null")
    parser.add_argument("--probe", action="store_true",
                        help="bot: record per-frame inbound lag (arrival vs RTP time)")
    parser.add_argument("--send", choices=("none", "silence", "shared"), default=None,
                        help="bare: what the receiver sends back (none, the default: receive "
                        "only; silence: paced silence per peer; shared: one encoder for all "
                        "peers); bot: none sends nothing (the bot's listening path alone)")
    parser.add_argument("--name", default="assistant")
    parser.add_argument("--data-dir", default=None, help="bot: where meeting notes go")
    parser.add_argument("--seed", type=int, default=1, help="talkers: gaps between clips")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
