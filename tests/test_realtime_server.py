"""meetbot's offline OpenAI Realtime server, driven by the official SDK and by raw events.

The server runs on loopback with the real local models (Whisper, Piper, the rule brain); the
models load once per process, so only the first test here pays for them.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from meetbot.events import PCM16, STT_SAMPLE_RATE, Turn
from meetbot.meeting.notes import InMemoryNotes, MeetingNotes
from meetbot.meeting.tools import NOTES_TOOLS, change_to_call, run_tool
from meetbot.realtime import events as ev
from meetbot.realtime.server import (
    RealtimeService,
    RunningRealtimeServer,
    start_realtime_server,
)
from meetbot.speech.audio import read_wav, resample, write_wav
from meetbot.speech.local_stt import WhisperSTT
from meetbot.speech.local_tts import PiperTTS
from signaling.server import RunningServer

HELP_ME = "Hey assistant, can you help us stay on track today?"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


@pytest.fixture(scope="module")
def tts() -> PiperTTS:
    return PiperTTS()


@pytest.fixture
async def realtime() -> AsyncIterator[RunningRealtimeServer]:
    server = await start_realtime_server()
    try:
        yield server
    finally:
        await server.close()


async def render(tts: PiperTTS, text: str, rate: int) -> PCM16:
    chunks = [c async for c in tts.synthesize(text)]
    return resample(np.concatenate(chunks), tts.sample_rate, rate)


class RawSession:
    """A bare WebSocket Realtime client: send events, wait for the ones a test expects."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any] | str) -> None:
        await self.ws.send_str(event if isinstance(event, str) else json.dumps(event))

    async def until(self, kind: str, within_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while True:
            msg = await self.ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            event: dict[str, Any] = json.loads(msg.data)
            self.seen.append(event)
            if event["type"] == kind:
                return event

    def types(self) -> list[str]:
        return [e["type"] for e in self.seen]


@pytest.fixture
async def raw(realtime: RunningRealtimeServer) -> AsyncIterator[RawSession]:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(realtime.url + "?model=meetbot-local") as ws:
            session = RawSession(ws)
            created = await session.until("session.created")
            assert created["session"]["model"] == "meetbot-local"
            yield session


# --- the official SDK -------------------------------------------------------------------------


async def test_openai_sdk_realtime_client_holds_a_spoken_exchange(
    realtime: RunningRealtimeServer, tts: PiperTTS, tmp_path: Path
) -> None:
    """Acceptance 2: the SDK's realtime client sends a WAV's audio and gets a sensible answer."""
    import openai

    wav = tmp_path / "help.wav"
    write_wav(wav, await render(tts, HELP_ME, 16_000), 16_000)
    pcm, rate = read_wav(wav)
    audio = resample(pcm, rate, ev.SAMPLE_RATE)
    silence = np.zeros(ev.SAMPLE_RATE, np.int16)  # lets server VAD hear the end of the turn
    audio = np.concatenate([silence[: ev.SAMPLE_RATE // 4], audio, silence])

    client = openai.AsyncOpenAI(base_url=realtime.base_url, api_key="anything")
    started = time.monotonic()
    heard = ""
    said = ""
    reply = bytearray()
    statuses: list[str] = []
    async with client.realtime.connect(model="meetbot-local") as conn:
        await conn.session.update(session={
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": {"input": {"transcription": {"model": "whisper-1"},
                                "turn_detection": {"type": "server_vad",
                                                   "silence_duration_ms": 700}}},
        })
        for start in range(0, len(audio), 4800):
            chunk = audio[start:start + 4800].astype("<i2").tobytes()
            await conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())
        async for event in conn:
            statuses.append(event.type)
            if event.type == "conversation.item.input_audio_transcription.completed":
                heard = event.transcript
            elif event.type == "response.output_audio.delta":
                reply += base64.b64decode(event.delta)
            elif event.type == "response.output_audio_transcript.done":
                said = event.transcript
            elif event.type == "response.done":
                assert event.response.status == "completed"
                break
            elif event.type == "error":
                pytest.fail(f"server error: {event.error}")
            assert time.monotonic() - started < 60
    for expected in ("session.created", "input_audio_buffer.speech_started",
                     "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
                     "response.created", "response.output_audio_transcript.delta"):
        assert expected in statuses
    assert {"help", "track"} <= words(heard), (heard, statuses)
    assert words(said) & {"agenda", "notes"}, said
    reply_pcm = np.frombuffer(bytes(reply), dtype="<i2").astype(np.int16)
    assert len(reply_pcm) / ev.SAMPLE_RATE > 2.0
    # The audio says what the transcript says: Whisper hears most of the same words.
    back = await WhisperSTT().transcribe(resample(reply_pcm, ev.SAMPLE_RATE, STT_SAMPLE_RATE))
    overlap = words(back.text) & words(said)
    assert len(overlap) >= len(words(said)) // 2, (back.text, said)


# --- raw protocol -------------------------------------------------------------------------------


async def test_listen_turn_becomes_notes_tool_calls_and_no_speech(raw: RawSession) -> None:
    """A turn not meant for the bot: notes come back as tool calls, nothing is said."""
    await raw.send(ev.session_update({"type": "realtime", "tools": list(NOTES_TOOLS),
                                      "audio": {"input": {"turn_detection": None}}}))
    await raw.until("session.updated")
    context = {"bot_name": "assistant", "participants": ["Dana", "Lee"], "notes": None}
    await raw.send(ev.item_create(ev.system_message(f"Meeting context: {json.dumps(context)}")))
    await raw.send(ev.item_create(ev.system_message("Speaker: Lee")))
    await raw.send(ev.item_create(ev.user_text_message(
        "I will draft the launch announcement by Friday.")))
    await raw.send(ev.response_create({"output_modalities": ["text"],
                                       "metadata": {"meetbot_turn": "listen"}}))
    call = await raw.until("response.function_call_arguments.done")
    done = await raw.until("response.done")
    assert call["name"] == "add_action_item"
    args = json.loads(call["arguments"])
    assert args["owner"] == "Lee" and "announcement" in args["text"]
    assert "friday" in (args.get("due_text") or "").lower()
    assert done["response"]["status"] == "completed"
    assert [o["type"] for o in done["response"]["output"]] == ["function_call"]
    assert "response.output_audio.delta" not in raw.types()

    notes = MeetingNotes()
    result = run_tool(notes, call["name"], call["arguments"])
    assert result.ok and notes.action_items[0].owner == "Lee"
    await raw.send(ev.item_create(ev.function_call_output(call["call_id"], result.output)))
    added = await raw.until("conversation.item.added")
    assert added["item"]["type"] == "function_call_output"


async def test_audio_in_a_created_item_is_transcribed_and_answered(
    raw: RawSession, tts: PiperTTS
) -> None:
    speech = await render(tts, "Assistant, what are our action items?", ev.SAMPLE_RATE)
    await raw.send(ev.item_create({"type": "message", "role": "user", "content": [
        {"type": "input_audio", "audio": ev.encode_audio(speech)}]}))
    await raw.send(ev.response_create({"output_modalities": ["text"]}))
    heard = await raw.until("conversation.item.input_audio_transcription.completed")
    assert {"action", "items"} <= words(heard["transcript"]), heard
    text = await raw.until("response.output_text.done")
    assert "action item" in text["text"].lower(), text
    assert (await raw.until("response.done"))["response"]["status"] == "completed"
    assert "response.output_audio.delta" not in raw.types()


async def test_cancel_mid_response_and_truncate_to_what_was_heard(raw: RawSession) -> None:
    await raw.send(ev.session_update({"type": "realtime",
                                      "audio": {"input": {"turn_detection": None}}}))
    await raw.send(ev.item_create(ev.user_text_message(HELP_ME)))
    await raw.send(ev.response_create())
    delta = await raw.until("response.output_audio.delta")
    await raw.send(ev.response_cancel())
    done = await raw.until("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    message = done["response"]["output"][-1]
    assert message["status"] == "incomplete"

    await raw.send(ev.item_truncate(delta["item_id"], 300))
    truncated = await raw.until("conversation.item.truncated")
    assert truncated["audio_end_ms"] == 300
    await raw.send({"type": "conversation.item.retrieve", "item_id": delta["item_id"]})
    item = (await raw.until("conversation.item.retrieved"))["item"]
    kept = item["content"][0]["transcript"]
    assert len(kept) < len(message["content"][0]["transcript"])

    # Nothing is active any more: a second cancel is an error, the session goes on.
    await raw.send(ev.response_cancel())
    error = await raw.until("error")
    assert error["error"]["code"] == "response_cancel_not_active"


async def test_server_vad_speech_interrupts_the_response(raw: RawSession, tts: PiperTTS) -> None:
    await raw.send(ev.item_create(ev.user_text_message(HELP_ME)))
    await raw.send(ev.response_create())
    await raw.until("response.output_audio.delta")
    speech = await render(tts, "Wait, stop please.", ev.SAMPLE_RATE)
    for start in range(0, len(speech), 4800):
        await raw.send(ev.input_audio_append(speech[start:start + 4800]))
    await raw.until("input_audio_buffer.speech_started")
    done = await raw.until("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "turn_detected"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('{"no": "type"}', "missing_type"),
        ('{"type": "dance.now"}', "invalid_value"),
        ('{"type": "input_audio_buffer.append", "audio": "***"}', "invalid_audio"),
        ('{"type": "input_audio_buffer.append"}', "invalid_value"),
        ('{"type": "input_audio_buffer.commit"}', "input_audio_buffer_commit_empty"),
        ('{"type": "session.update", "session": {"audio": {"input": {"format": '
         '{"type": "audio/pcmu"}}}}}', "unsupported_audio_format"),
        ('{"type": "session.update", "session": "loud"}', "invalid_value"),
        ('{"type": "conversation.item.create", "item": {"type": "message", "role": "boss", '
         '"content": []}}', "invalid_value"),
        ('{"type": "conversation.item.truncate", "item_id": "nope", "audio_end_ms": 1}',
         "item_not_found"),
        ('{"type": "response.create", "response": {"metadata": 3}}', "invalid_value"),
    ],
)
async def test_malformed_client_events_get_an_error_and_the_session_goes_on(
    raw: RawSession, frame: str, code: str
) -> None:
    await raw.send(frame)
    error = await raw.until("error")
    assert error["error"]["code"] == code
    assert error["error"]["message"]
    await raw.send(ev.session_update({"type": "realtime", "instructions": "Be brief."}))
    updated = await raw.until("session.updated")
    assert updated["session"]["instructions"] == "Be brief."


async def test_only_one_response_at_a_time(raw: RawSession) -> None:
    await raw.send(ev.item_create(ev.user_text_message(HELP_ME)))
    await raw.send(ev.response_create())
    await raw.send(ev.response_create())
    error = await raw.until("error")
    assert error["error"]["code"] == "conversation_already_has_active_response"
    assert (await raw.until("response.done"))["response"]["status"] == "completed"


async def test_beta_shaped_session_update_is_understood(raw: RawSession) -> None:
    await raw.send({"type": "session.update", "session": {
        "modalities": ["text"], "input_audio_format": "pcm16", "turn_detection": None,
        "input_audio_transcription": None, "voice": "verse", "instructions": "Hi."}})
    session = (await raw.until("session.updated"))["session"]
    assert session["output_modalities"] == ["text"]
    assert session["audio"]["input"]["turn_detection"] is None
    assert session["audio"]["input"]["transcription"] is None
    assert session["audio"]["output"]["voice"] == "verse"


# --- pure pieces ----------------------------------------------------------------------------------


SEED_TURNS = [
    ("Dana", True, "Hey assistant, can you help us stay on track today?"),
    ("Lee", True, "We need to discuss the Q3 budget and plan the product launch."),
    ("Dana", True, "Yes, let's start with the budget. Let's give it thirty seconds."),
    ("Lee", False, "Marketing is ten percent over, so we agreed to cut the events line."),
    ("Dana", True, "Let's move on."),
    ("Lee", False, "I will draft the launch announcement by Friday."),
    ("Lee", False, "Actually that announcement is done already, mark it complete."),
]


def test_brain_changes_replayed_as_tool_calls_give_the_same_notes() -> None:
    """The offline server's mirror: every change the brain makes, as a call, lands the same."""
    from meetbot.brain.rules import RuleBrain

    mine, theirs = InMemoryNotes(), MeetingNotes()
    brain = RuleBrain(mine, "assistant", participants=["Dana", "Lee"])
    calls = []

    def mirror(change: Any) -> None:
        call = change_to_call(change)
        if call is not None:
            calls.append(call.name)
            result = run_tool(theirs, call.name, call.arguments_json,
                              wall_time=change.payload.get("wall_time"))
            assert result.ok, (call, result.output)

    mine.notes.subscribe(mirror)
    now = time.time()
    for speaker, addressed, text in SEED_TURNS:
        brain.handle(Turn(speaker, speaker, text, addressed, 0.0, 0.0, now))
    assert {"add_agenda_items", "start_item", "set_timebox", "add_decision",
            "add_action_item"} <= set(calls)
    a, b = mine.notes.to_dict(), theirs.to_dict()
    for key in ("agenda", "decisions"):
        assert [(x["title" if key == "agenda" else "text"], x.get("status")) for x in a[key]] \
            == [(x["title" if key == "agenda" else "text"], x.get("status")) for x in b[key]]
    strip = ("wall_time", "id")
    assert [{k: v for k, v in x.items() if k not in strip} for x in a["action_items"]] == \
        [{k: v for k, v in x.items() if k not in strip} for x in b["action_items"]]


def test_tool_mistakes_come_back_as_errors_not_exceptions() -> None:
    notes = MeetingNotes()
    for name, args, needle in [
        ("fly", "{}", "unknown tool"),
        ("add_decision", "{not json", "not valid JSON"),
        ("add_decision", "[1]", "JSON object"),
        ("add_decision", '{"text": 5}', "'text' must be a string"),
        ("start_item", '{"ref": "budget"}', "no agenda item"),
        ("set_timebox", '{"timebox_s": "soon"}', "number"),
    ]:
        result = run_tool(notes, name, args)
        assert not result.ok and needle in json.loads(result.output)["error"], result.output
    ok = run_tool(notes, "add_decision", '{"text": "Cut the events line"}', speaker="Lee")
    assert ok.ok and notes.decisions[0].speaker == "Lee"
    read = json.loads(run_tool(notes, "get_notes", "").output)
    assert read["notes"]["decisions"][0]["text"] == "Cut the events line"


def test_event_parsing_maps_beta_names_and_rejects_bad_audio() -> None:
    assert ev.parse_event('{"type": "response.audio.delta", "delta": ""}').type == \
        "response.output_audio.delta"
    assert ev.parse_event(b'{"type": "response.done"}').type == "response.done"
    for bad in ("{", "[]", '{"type": 3}', b"\xff\xfe"):
        with pytest.raises(ev.EventError):
            ev.parse_event(bad)
    pcm = np.arange(-5, 5, dtype=np.int16)
    assert np.array_equal(ev.decode_audio(ev.encode_audio(pcm)), pcm)
    with pytest.raises(ev.EventError):
        ev.decode_audio(base64.b64encode(b"\x01\x02\x03").decode())
    assert ev.heard_prefix("one two three four", 0.5) == "one two…"
    assert ev.heard_prefix("one two", 1.0) == "one two"


# --- instructions through the room server ----------------------------------------------------


async def test_instructions_posted_to_a_room_reach_its_bot(room_server: RunningServer) -> None:
    room = "instr-room"
    url = f"{room_server.url}/api/rooms/{room}/instructions"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"instructions": "Be brief."}) as resp:
            assert resp.status == 404 and (await resp.json())["error"] == "no-bot"
        async with http.ws_connect(room_server.ws_url) as bot:
            await bot.send_json({"type": "join", "room": room, "name": "assistant",
                                 "kind": "bot"})
            assert (await bot.receive_json(timeout=5))["type"] == "welcome"
            async with http.post(url, data="nope") as resp:
                assert resp.status == 400
            async with http.post(url, json={"instructions": ""}) as resp:
                assert resp.status == 400
            async with http.post(url, json={"instructions": "Answer in one sentence."}) as resp:
                assert resp.status == 202 and (await resp.json())["delivered"] == 1
            message = await bot.receive_json(timeout=5)
            assert message == {"type": "instructions", "from": "http",
                               "text": "Answer in one sentence."}


async def test_api_key_is_checked_when_configured() -> None:
    server = await start_realtime_server(service=RealtimeService(api_key="sekret"))
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.url)
            assert refused.value.status == 401
            headers = {"Authorization": "Bearer sekret"}
            async with http.ws_connect(server.url, headers=headers) as ws:
                assert (await ws.receive_json(timeout=30))["type"] == "session.created"
    finally:
        await server.close()


async def test_room_server_serves_the_realtime_endpoint(room_server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        ws_url = room_server.url.replace("http://", "ws://") + "/v1/realtime?model=x"
        async with http.ws_connect(ws_url) as ws:
            first = await ws.receive_json(timeout=30)
            assert first["type"] == "session.created"
            assert first["session"]["model"] == "x"
        async with http.get(room_server.url + "/v1/realtime") as resp:
            assert resp.status == 400

