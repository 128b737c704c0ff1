"""Joining by URL: address parsing, and a peer sending broken SDP does not disturb the bot."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from meetbot.bot import BotSession
from meetbot.config import BotConfig
from meetbot.simulate import SimulatedParticipant
from meetbot.transport.signaling_client import SignalingError, parse_room_url
from signaling.server import RunningServer
from tests.conftest import load_wav


def test_room_url_gives_the_websocket_and_room() -> None:
    a = parse_room_url("http://127.0.0.1:8080/r/standup-42")
    assert (a.ws_url, a.room) == ("ws://127.0.0.1:8080/ws", "standup-42")
    assert parse_room_url("https://meet.example/r/x").ws_url == "wss://meet.example/ws"


@pytest.mark.parametrize(
    "url",
    ["ftp://h/r/x", "http://h/room/x", "http://h/r/", "http://h/r/bad room", "http://h/r/a/b"],
)
def test_bad_room_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(SignalingError, match="URL"):
        parse_room_url(url)


async def test_joining_a_server_that_is_not_there_fails_clearly() -> None:
    bot = BotSession("http://127.0.0.1:9/r/nowhere", BotConfig(persona="echo"))
    with pytest.raises(SignalingError, match="cannot join"):
        await bot.start()
    await bot.stop()


async def test_broken_sdp_from_a_peer_is_logged_and_the_call_goes_on(
    room_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = room_server.room_url("broken-sdp")
    bot = BotSession(url, BotConfig(name="assistant", persona="echo"))
    await bot.start()
    heard: list[str] = []
    bot.on("utterance", lambda u: heard.append(u.participant_name))
    async with aiohttp.ClientSession() as http, http.ws_connect(room_server.ws_url) as ws:
        await ws.send_str(
            json.dumps({"type": "join", "room": "broken-sdp", "name": "Mallory", "kind": "person"})
        )
        welcome = await ws.receive_json(timeout=5)
        bot_id = welcome["peers"][0]["id"]
        await ws.send_str(json.dumps({"type": "offer", "to": bot_id, "sdp": "v=0\r\nnonsense"}))
        await asyncio.sleep(0.5)
        assert any("bad offer from Mallory" in r.getMessage() for r in caplog.records)
        dana = SimulatedParticipant(url, "Dana")
        await dana.join()
        try:
            await dana.wait_for_peer("assistant")
            pcm, rate = load_wav("dana_hello.wav")
            await dana.speak(pcm, rate)
            for _ in range(100):
                if heard:
                    break
                await asyncio.sleep(0.05)
            assert heard == ["Dana"]
        finally:
            await dana.leave()
            await bot.stop()
