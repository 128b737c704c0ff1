"""The smallest meetbot: a room server, an echo bot and one simulated participant.

    python examples/echo_bot.py

The participant says a sentence; the bot hears it on that participant's own track, cuts it
into an utterance with its voice activity detector and plays it back into the call; the
participant hears its own words back. No models, no network.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from meetbot.bot import BotSession
from meetbot.config import BotConfig
from meetbot.simulate import SimulatedParticipant
from meetbot.speech.audio import read_wav
from signaling.server import start_server

CLIP = Path(__file__).parents[1] / "tests" / "data" / "dana_hello.wav"


async def main() -> None:
    server = await start_server("127.0.0.1", 0)
    url = server.room_url("echo-example")
    bot = BotSession(url, BotConfig(name="echo", persona="echo"))
    bot.on("utterance", lambda u: print(f"bot heard {u.participant_name} for {u.duration_s:.1f} s"))
    await bot.start()
    dana = SimulatedParticipant(url, "Dana")
    await dana.join()
    try:
        await dana.wait_for_peer("echo")
        pcm, rate = read_wav(CLIP)
        said = await dana.speak(pcm, rate)
        print(f"Dana spoke for {said.speech_end - said.speech_start:.1f} s")
        heard = dana.recorder_for("echo")
        assert heard is not None
        for _ in range(100):
            first = heard.first_sound_after(said.speech_end)
            if first is not None:
                delay = first - said.speech_end
                print(f"Dana hears her words back {delay:.2f} s after she stopped")
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(len(pcm) / rate)
    finally:
        await dana.leave()
        await bot.stop()
        await server.close()


if __name__ == "__main__":
    asyncio.run(main())
