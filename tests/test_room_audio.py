"""The media foundation over real loopback WebRTC: attribution, echo, departures, cleanup."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from meetbot.bot import BotSession
from meetbot.config import BotConfig
from meetbot.events import Utterance
from meetbot.simulate import RECORD_RATE, SimulatedParticipant
from signaling.server import RunningServer
from tests.conftest import load_wav


async def _wait_until(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _meeting(server: RunningServer, room: str, names: list[str], persona: str = "echo"):  # type: ignore[no-untyped-def]
    bot = BotSession(server.room_url(room), BotConfig(name="assistant", persona=persona))
    await bot.start()
    people = []
    for name in names:
        p = SimulatedParticipant(server.room_url(room), name)
        await p.join()
        people.append(p)
    await _wait_until(
        lambda: len(bot.listeners) == len(names)
        and all(lis.frames_received > 10 for lis in bot.listeners.values()),
        10,
        "the bot to receive audio from everyone",
    )
    return bot, people


async def test_utterances_are_attributed_with_accurate_times(room_server: RunningServer) -> None:
    bot, (dana, lee) = await _meeting(room_server, "attribution", ["Dana", "Lee"])
    heard: list[Utterance] = []
    bot.on("utterance", heard.append)
    try:
        said = []
        for person, clip_name in ((dana, "dana_hello.wav"), (lee, "lee_update.wav")):
            pcm, rate = load_wav(clip_name)
            said.append((person.name, await person.speak(pcm, rate)))
            await _wait_until(lambda n=len(said): len(heard) >= n, 5, f"{person.name}'s utterance")
            await asyncio.sleep(0.3)
        assert [u.participant_name for u in heard] == ["Dana", "Lee"]
        for utt, (name, clip) in zip(heard, said, strict=True):
            assert abs(utt.started_at - clip.speech_start) < 0.150, (name, utt.started_at - clip.speech_start)
            assert abs(utt.ended_at - clip.speech_end) < 0.150, (name, utt.ended_at - clip.speech_end)
            assert utt.duration_s > 2.0
    finally:
        await bot.stop()
        for p in (dana, lee):
            await p.leave()
