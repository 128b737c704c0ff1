"""meetbot's offline Realtime server: the OpenAI Realtime protocol over the local cascade.

``GET /v1/realtime`` (a WebSocket; ``?model=`` is accepted and echoed) speaks the subset of the
Realtime API a voice client needs: session settings, audio in with server VAD or manual
commits, input transcription, conversation items, responses with streamed audio and transcript,
function tools, response cancel and item truncation, and ``error`` events for anything
malformed. Behind it are the local engines: Whisper for the input, the rule brain as "the
model", Piper for the voice. Any Realtime client (the official ``openai`` SDK among them) can
use meetbot's offline voice pipeline this way, and the bot's speech-to-speech mode works with
no network at all.

The rule brain keeps the meeting notes on a private copy. When the client declared the notes
tools (``meetbot/meeting/tools.py``), each change the brain makes is sent as the function call
that makes the same change on the client's notes, which is how the bot's notes stay the ones
of record. Turns are attributed by ``Speaker: NAME`` system messages and the brain's view of
the meeting is seeded by a ``Meeting context: {json}`` system message; both are meetbot
conventions that plain Realtime models simply read as context (``docs/realtime.md``).

Shape: one :class:`RealtimeSession` per connection. Client events are handled one at a time in
the order they arrive; transcriptions and the current response run as tasks, so a
``response.cancel`` or new audio is handled while a response is being spoken. Speech models are
shared by every connection of the process (:class:`LocalEngines`) and run off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from aiohttp import WSMsgType, web

from meetbot.config import VadConfig
from meetbot.events import PCM16, STT_SAMPLE_RATE, Turn
from meetbot.media.vad import Segment, VadSegmenter
from meetbot.meeting.notes import InMemoryNotes, MeetingNotes, NoteChange
from meetbot.meeting.tools import change_to_call
from meetbot.realtime import events as ev
from meetbot.realtime.events import Event, EventError, JsonObject, SessionSettings
from meetbot.speech.audio import StreamResampler, resample
from meetbot.speech.base import SpeechError, SpeechToText, TextToSpeech

log = logging.getLogger(__name__)

REALTIME_PATH: Final = "/v1/realtime"

DEFAULT_INSTRUCTIONS: Final = (
    "You are meetbot's offline meeting assistant. You keep the agenda, the timeboxes, action "
    "items and decisions, and answer briefly when addressed."
)

SPEAKER_PREFIX: Final = "Speaker:"
"""A system message ``Speaker: Dana`` attributes the user audio/text items that follow."""
CONTEXT_PREFIX: Final = "Meeting context:"
"""A system message ``Meeting context: {"bot_name", "participants", "notes"}`` seeds the brain."""
JOINED_PREFIX: Final = "Participant joined:"

MAX_BUFFER_S: Final = 300.0
"""The input buffer holds at most this much uncommitted audio; more is refused."""
MAX_ITEMS: Final = 512
"""Conversation items remembered per session (oldest forgotten first)."""
MAX_PENDING_TURNS: Final = 64
"""User turns waiting for a response; older ones are only context by then."""
_DELTA_SAMPLES: Final = ev.SAMPLE_RATE // 5
"""Audio deltas of 200 ms: small enough to start playing early, few enough to be cheap."""
_WS_HEARTBEAT_S: Final = 30.0


# --- engines ------------------------------------------------------------------------------------


BrainFactory = Callable[[InMemoryNotes, str], Any]
"""(notes holder, bot name) -> a brain with ``handle(turn)``, ``proactive(now)``,
``add_participant(name)`` (the rule brain's interface)."""


def _rule_brain(holder: InMemoryNotes, bot_name: str) -> Any:
    from meetbot.brain.rules import RuleBrain

    return RuleBrain(holder, bot_name, record_own_replies=False)


@dataclass
class LocalEngines:
    """The speech models and brain behind every Realtime connection of one process.

    ``stt`` and ``tts`` are created lazily (importing and loading Whisper and Piper costs
    seconds), once per process, on the first connection or :meth:`load`.
    """

    stt: SpeechToText | None = None
    tts: TextToSpeech | None = None
    brain_factory: BrainFactory = _rule_brain
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    async def load(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.stt is None:
                from meetbot.speech.local_stt import WhisperSTT

                self.stt = WhisperSTT()
            if self.tts is None:
                from meetbot.speech.local_tts import PiperTTS

                self.tts = PiperTTS()
            for engine in (self.stt, self.tts):
                load = getattr(engine, "load", None)
                if load is not None:
                    await load()


_SHARED: LocalEngines | None = None


def shared_engines() -> LocalEngines:
    """The process-wide engines (models are loaded once per process, whoever asks)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = LocalEngines()
    return _SHARED


# --- one session ---------------------------------------------------------------------------------


@dataclass
class _Item:
    """A conversation item as the server remembers it (audio is not kept, only its length)."""

    id: str
    type: str
    role: str | None = None
    text: str = ""
    audio_ms: int = 0
    speaker: str = ""
    call_id: str | None = None
    name: str | None = None

    def to_wire(self, status: str = "completed") -> JsonObject:
        base: JsonObject = {"id": self.id, "object": "realtime.item", "type": self.type,
                            "status": status}
        if self.type == "function_call":
            return {**base, "name": self.name, "call_id": self.call_id, "arguments": self.text}
        if self.type == "function_call_output":
            return {**base, "call_id": self.call_id, "output": self.text}
        content: list[JsonObject]
        if self.role == "assistant":
            content = (
                [{"type": "output_audio", "transcript": self.text}] if self.audio_ms
                else [{"type": "output_text", "text": self.text}]
            )
        elif self.role == "user" and self.audio_ms:
            content = [{"type": "input_audio", "transcript": self.text or None}]
        else:
            content = [{"type": "input_text", "text": self.text}]
        return {**base, "role": self.role, "content": content}


@dataclass
class _UserTurn:
    item: _Item
    wall_time: float
    transcription: asyncio.Task[str] | None = None


@dataclass
class _Response:
    id: str
    params: JsonObject
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    output: list[JsonObject] = field(default_factory=list)


Send = Callable[[JsonObject], Awaitable[None]]


class RealtimeSession:
    """The server side of one Realtime connection, independent of the WebSocket.

    ``send`` delivers one server event; :meth:`handle` takes one client frame. Tests drive it
    directly; :func:`realtime_handler` wires it to aiohttp.
    """

    def __init__(self, send: Send, engines: LocalEngines, model: str = "meetbot-local") -> None:
        self._send_event = send
        self._engines = engines
        self.settings = SessionSettings(model=model, instructions=DEFAULT_INSTRUCTIONS)
        self.id = ev.new_id("sess")
        self.conversation_id = ev.new_id("conv")
        self._bot_name = "assistant"
        self._speaker = "user"
        self._holder = InMemoryNotes()
        self._brain = engines.brain_factory(self._holder, self._bot_name)
        self._items: OrderedDict[str, _Item] = OrderedDict()
        self._pending: list[_UserTurn] = []
        self._response: _Response | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._reset_buffer()
        self._audio_pos = 0
        """Samples (24 kHz) appended over the whole session, the timeline of VAD events."""
        self._vad: VadSegmenter | None = None
        self._vad_pending = np.zeros(0, np.int16)
        self._vad_item: str | None = None
        self._vad_events: list[tuple[str, Any]] = []
        self._configure_vad()

    @property
    def notes(self) -> MeetingNotes:
        """The brain's private copy of the notes (mirrored to the client through tools)."""
        return self._holder.notes

    @property
    def responding(self) -> bool:
        return self._response is not None

    async def start(self) -> None:
        await self.send(ev.server_event("session.created", session=self._session_wire()))
        await self.send(ev.server_event(
            "conversation.created",
            conversation={"id": self.conversation_id, "object": "realtime.conversation"},
        ))

    async def close(self) -> None:
        """Stop every task of this session; nothing more is sent."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def send(self, event: JsonObject) -> None:
        if self._closed:
            return
        try:
            await self._send_event(event)
        except (ConnectionError, RuntimeError) as exc:  # the socket went away under us
            log.debug("realtime %s: could not send %s: %s", self.id, event.get("type"), exc)
            self._closed = True

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- client events ---------------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> None:
        """Handle one client frame; anything wrong with it becomes an ``error`` event."""
        event_id: str | None = None
        try:
            event = ev.parse_event(raw, aliases=False)
            client_id = event.data.get("event_id")
            event_id = client_id if isinstance(client_id, str) else None
            handler = self._HANDLERS.get(event.type)
            if handler is None:
                raise EventError(f"unknown event type {event.type[:64]!r}", "invalid_value")
            await handler(self, event)
        except EventError as exc:
            log.info("realtime %s: refused a client event: %s", self.id, exc)
            await self.send(ev.error_event(str(exc), exc.code, event_id=event_id))
        except (ValueError, TypeError, KeyError) as exc:  # a value we did not foresee
            log.exception("realtime %s: failed on a client event", self.id)
            await self.send(ev.error_event(f"could not handle the event: {exc}",
                                           "server_error", kind="server_error",
                                           event_id=event_id))

    async def _session_update(self, event: Event) -> None:
        before = self.settings.turn_detection
        self.settings.apply_update(event.mapping("session"))
        if self.settings.turn_detection != before:  # keep a turn in progress otherwise
            self._configure_vad()
        await self.send(ev.server_event("session.updated", session=self._session_wire()))

    def _session_wire(self) -> JsonObject:
        return {"id": self.id, "object": "realtime.session", **self.settings.to_wire()}

    # audio in

    def _reset_buffer(self) -> None:
        self._buffer: list[PCM16] = []
        self._buffer_samples = 0
        self._to_16k = StreamResampler(ev.SAMPLE_RATE, STT_SAMPLE_RATE)
        self._buffer_16k: list[PCM16] = []

    def _configure_vad(self) -> None:
        td = self.settings.turn_detection
        if td is None:
            self._vad = None
            self._vad_item = None
            return
        config = VadConfig(
            aggressiveness=min(3, max(0, round(td.threshold * 4))),
            end_ms=td.silence_duration_ms,
            pre_roll_ms=max(20, td.prefix_padding_ms),
        )
        self._vad = VadSegmenter(config, self._vad_segment, self._vad_started)
        self._vad_pending = np.zeros(0, np.int16)
        self._vad_item = None

    async def _append(self, event: Event) -> None:
        pcm = ev.decode_audio(event.text("audio"))
        if not len(pcm):
            return
        if (self._buffer_samples + len(pcm)) / ev.SAMPLE_RATE > MAX_BUFFER_S:
            raise EventError(
                f"the input audio buffer holds at most {MAX_BUFFER_S:.0f} s; commit or clear it",
                "input_audio_buffer_full",
            )
        self._buffer.append(pcm)
        self._buffer_samples += len(pcm)
        pcm16 = self._to_16k.process(pcm)
        self._buffer_16k.append(pcm16)
        start_s = self._audio_pos / ev.SAMPLE_RATE
        self._audio_pos += len(pcm)
        if self._vad is not None:
            self._feed_vad(pcm16, start_s)
            happened, self._vad_events = self._vad_events, []
            for kind, arg in happened:
                await self._on_vad(kind, arg)
            if not self._vad.speaking:
                self._forget_silence()

    def _forget_silence(self) -> None:
        """With server VAD, audio before the current speech is not needed: keep a second.

        A client streaming a microphone all meeting would otherwise fill the buffer.
        """
        if self._buffer_samples <= 2 * ev.SAMPLE_RATE:
            return
        keep = np.concatenate(self._buffer)[-ev.SAMPLE_RATE:]
        keep16 = np.concatenate(self._buffer_16k)[-STT_SAMPLE_RATE:]
        self._buffer, self._buffer_16k = [keep], [keep16]
        self._buffer_samples = len(keep)

    def _feed_vad(self, pcm16: PCM16, start_s: float) -> None:
        assert self._vad is not None
        at = start_s - len(self._vad_pending) / STT_SAMPLE_RATE
        pending = np.concatenate((self._vad_pending, pcm16))
        step = self._vad.frame_samples
        n = len(pending) // step
        for k in range(n):
            self._vad.feed(pending[k * step:(k + 1) * step], at + k * step / STT_SAMPLE_RATE)
        self._vad_pending = pending[n * step:].copy()

    def _vad_started(self, at: float) -> None:
        self._vad_events.append(("start", at))

    def _vad_segment(self, segment: Segment) -> None:
        self._vad_events.append(("stop", segment))

    async def _on_vad(self, kind: str, arg: Any) -> None:
        td = self.settings.turn_detection
        if td is None:
            return
        if kind == "start":
            self._vad_item = ev.new_id("item")
            start_ms = max(0, int(float(arg) * 1000) - td.prefix_padding_ms)
            await self.send(ev.server_event(
                "input_audio_buffer.speech_started", audio_start_ms=start_ms,
                item_id=self._vad_item,
            ))
            if td.interrupt_response and self._response is not None:
                await self._cancel_response("turn_detected")
            return
        segment: Segment = arg
        item_id = self._vad_item or ev.new_id("item")
        self._vad_item = None
        end_ms = int(segment.detected_at * 1000)
        await self.send(ev.server_event(
            "input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id
        ))
        await self._commit(item_id, segment.pcm)
        if td.create_response and self._response is None:
            await self._start_response({})

    async def _commit_event(self, event: Event) -> None:
        if self._buffer_samples == 0:
            raise EventError("the input audio buffer is empty; nothing to commit",
                             "input_audio_buffer_commit_empty")
        item_id = self._vad_item or ev.new_id("item")
        self._vad_item = None
        await self._commit(item_id, None)

    async def _commit(self, item_id: str, pcm16: PCM16 | None) -> None:
        """Turn the buffer into a user audio item and start transcribing it.

        ``pcm16`` is what server VAD cut (speech with its padding); a manual commit takes the
        whole buffer.
        """
        if pcm16 is None:
            tail = self._to_16k.flush()
            pcm16 = np.concatenate([*self._buffer_16k, tail]) if self._buffer_16k else tail
        audio_ms = self._buffer_samples * 1000 // ev.SAMPLE_RATE
        self._reset_buffer()
        if self._vad is not None:
            self._vad.flush(self._audio_pos / ev.SAMPLE_RATE)
            self._vad_events.clear()
        item = _Item(item_id, "message", "user", audio_ms=max(1, audio_ms), speaker=self._speaker)
        previous = next(reversed(self._items), None)
        self._remember(item)
        await self.send(ev.server_event("input_audio_buffer.committed", item_id=item_id,
                                        previous_item_id=previous))
        await self.send(ev.server_event("conversation.item.added", item=item.to_wire("completed"),
                                        previous_item_id=previous))
        turn = _UserTurn(item, time.time())
        turn.transcription = self._spawn(self._transcribe(item, pcm16), f"stt:{item_id}")
        self._add_pending(turn)
        await self.send(ev.server_event("conversation.item.done", item=item.to_wire(),
                                        previous_item_id=previous))

    async def _transcribe(self, item: _Item, pcm16: PCM16) -> str:
        stt = self._engines.stt
        try:
            if stt is None:
                raise SpeechError("no speech-to-text engine")
            text = (await stt.transcribe(pcm16)).text.strip()
        except SpeechError as exc:
            log.error("realtime %s: transcription failed: %s", self.id, exc)
            if self.settings.transcription_model is not None:
                await self.send(ev.server_event(
                    "conversation.item.input_audio_transcription.failed", item_id=item.id,
                    content_index=0,
                    error={"type": "transcription_error", "code": "transcription_failed",
                           "message": str(exc)},
                ))
            return ""
        item.text = text
        if self.settings.transcription_model is not None:
            await self.send(ev.server_event(
                "conversation.item.input_audio_transcription.completed", item_id=item.id,
                content_index=0, transcript=text,
                usage={"type": "duration", "seconds": round(len(pcm16) / STT_SAMPLE_RATE, 3)},
            ))
        return text

    async def _clear(self, event: Event) -> None:
        self._reset_buffer()
        self._configure_vad()
        await self.send(ev.server_event("input_audio_buffer.cleared"))

    # conversation items

    def _remember(self, item: _Item) -> None:
        self._items[item.id] = item
        while len(self._items) > MAX_ITEMS:
            self._items.popitem(last=False)

    async def _item_create(self, event: Event) -> None:
        raw = event.mapping("item")
        kind = raw.get("type")
        item_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        item = _Item(item_id or ev.new_id("item"), str(kind))
        if item.id in self._items:
            raise EventError(f"an item with id {item.id!r} already exists", "duplicate_item_id")
        audio16: PCM16 | None = None
        if kind == "message":
            role = raw.get("role")
            if role not in ("user", "assistant", "system"):
                raise EventError("message role must be 'user', 'assistant' or 'system'",
                                 "invalid_value")
            item.role = str(role)
            content = raw.get("content")
            if not isinstance(content, list) or not content:
                raise EventError("a message needs a non-empty 'content' list", "invalid_value")
            texts: list[str] = []
            for part in content:
                if not isinstance(part, dict):
                    raise EventError("message content parts must be objects", "invalid_value")
                ptype = part.get("type")
                if ptype in ("input_text", "output_text", "text"):
                    texts.append(str(part.get("text") or ""))
                elif ptype == "input_audio" and role == "user":
                    pcm = ev.decode_audio(str(part.get("audio") or ""))
                    audio16 = resample(pcm, ev.SAMPLE_RATE, STT_SAMPLE_RATE)
                    item.audio_ms = max(1, len(pcm) * 1000 // ev.SAMPLE_RATE)
                else:
                    raise EventError(f"unsupported content part {ptype!r}", "invalid_value")
            item.text = " ".join(t for t in texts if t)
        elif kind == "function_call_output":
            call_id, output = raw.get("call_id"), raw.get("output")
            if not isinstance(call_id, str) or not isinstance(output, str):
                raise EventError("function_call_output needs string 'call_id' and 'output'",
                                 "invalid_value")
            item.call_id, item.text = call_id, output
            self._check_tool_output(call_id, output)
        elif kind == "function_call":
            name, call_id = raw.get("name"), raw.get("call_id")
            if not isinstance(name, str) or not isinstance(call_id, str):
                raise EventError("function_call needs string 'name' and 'call_id'",
                                 "invalid_value")
            item.name, item.call_id = name, call_id
            item.text = str(raw.get("arguments") or "")
        else:
            raise EventError(f"unsupported item type {kind!r}", "invalid_value")
        previous = event.opt_text("previous_item_id")
        if previous is not None and previous not in self._items and previous != "root":
            raise EventError(f"previous_item_id {previous!r} does not exist", "item_not_found")
        if previous is None:
            previous = next(reversed(self._items), None)
        item.speaker = self._speaker
        self._remember(item)
        if item.role == "system":
            self._system_message(item.text)
        await self.send(ev.server_event("conversation.item.added", item=item.to_wire(),
                                        previous_item_id=previous))
        await self.send(ev.server_event("conversation.item.done", item=item.to_wire(),
                                        previous_item_id=previous))
        if item.role == "user":
            turn = _UserTurn(item, time.time())
            if audio16 is not None:
                turn.transcription = self._spawn(self._transcribe(item, audio16),
                                                 f"stt:{item.id}")
            self._add_pending(turn)

    def _add_pending(self, turn: _UserTurn) -> None:
        """A user turn for the next response; a client that never asks for one (transcription
        only) must not make the list grow for ever."""
        self._pending.append(turn)
        del self._pending[:-MAX_PENDING_TURNS]

    def _check_tool_output(self, call_id: str, output: str) -> None:
        """A tool that failed on the client means the brain's copy of the notes is ahead."""
        with contextlib.suppress(ValueError, TypeError):
            result = json.loads(output)
            if isinstance(result, dict) and result.get("ok") is False:
                log.warning("realtime %s: the client could not apply call %s: %s",
                            self.id, call_id, result.get("error"))

    def _system_message(self, text: str) -> None:
        """meetbot's conventions: who speaks next, who is here, what the notes hold."""
        text = text.strip()
        if text.startswith(SPEAKER_PREFIX):
            name = text[len(SPEAKER_PREFIX):].strip().rstrip(".")
            if name:
                self._speaker = name
                if name != self._bot_name:
                    self._brain.add_participant(name)
        elif text.startswith(JOINED_PREFIX):
            name = text[len(JOINED_PREFIX):].strip().rstrip(".")
            if name:
                self._brain.add_participant(name)
        elif text.startswith(CONTEXT_PREFIX):
            self._load_context(text[len(CONTEXT_PREFIX):])

    def _load_context(self, raw: str) -> None:
        try:
            context = json.loads(raw)
            if not isinstance(context, dict):
                raise ValueError("not an object")
            notes = context.get("notes")
            holder = InMemoryNotes(MeetingNotes.from_dict(notes)) if notes else InMemoryNotes()
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("realtime %s: ignoring a malformed meeting context: %s", self.id, exc)
            return
        name = context.get("bot_name")
        if isinstance(name, str) and name.strip():
            self._bot_name = name.strip()
        self._holder = holder
        self._brain = self._engines.brain_factory(holder, self._bot_name)
        for person in context.get("participants") or []:
            if isinstance(person, str) and person.strip():
                self._brain.add_participant(person.strip())

    async def _item_delete(self, event: Event) -> None:
        item_id = event.text("item_id")
        if self._items.pop(item_id, None) is None:
            raise EventError(f"no item {item_id!r}", "item_not_found")
        self._pending = [t for t in self._pending if t.item.id != item_id]
        await self.send(ev.server_event("conversation.item.deleted", item_id=item_id))

    async def _item_retrieve(self, event: Event) -> None:
        item = self._items.get(event.text("item_id"))
        if item is None:
            raise EventError(f"no item {event.text('item_id')!r}", "item_not_found")
        await self.send(ev.server_event("conversation.item.retrieved", item=item.to_wire()))

    async def _item_truncate(self, event: Event) -> None:
        """The client played only ``audio_end_ms`` of an answer: forget what was not heard."""
        item = self._items.get(event.text("item_id"))
        if item is None or item.role != "assistant" or not item.audio_ms:
            raise EventError(f"no assistant audio item {event.text('item_id')!r}",
                             "item_not_found")
        end_ms = event.number("audio_end_ms")
        content_index = event.number("content_index", 0)
        if end_ms < 0 or content_index != 0:
            raise EventError("audio_end_ms must be >= 0 and content_index 0", "invalid_value")
        if end_ms < item.audio_ms:
            item.text = ev.heard_prefix(item.text, end_ms / item.audio_ms)
            item.audio_ms = max(1, end_ms)
        await self.send(ev.server_event("conversation.item.truncated", item_id=item.id,
                                        content_index=0, audio_end_ms=min(end_ms, item.audio_ms)))

    # ---- responses -------------------------------------------------------------------------

    async def _response_create(self, event: Event) -> None:
        if self._response is not None:
            raise EventError(
                f"Conversation already has an active response in progress: {self._response.id}",
                "conversation_already_has_active_response",
            )
        params = event.mapping("response", {})
        await self._start_response(params)

    async def _response_cancel(self, event: Event) -> None:
        wanted = event.opt_text("response_id")
        if self._response is None or (wanted is not None and wanted != self._response.id):
            raise EventError("there is no active response to cancel",
                             "response_cancel_not_active")
        await self._cancel_response("client_cancelled")

    async def _cancel_response(self, reason: str) -> None:
        resp = self._response
        if resp is None or resp.task is None or resp.cancel_reason is not None:
            return
        resp.cancel_reason = reason
        resp.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resp.task

    async def _start_response(self, params: JsonObject) -> None:
        metadata = params.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise EventError("response.metadata must be an object", "invalid_value")
        modalities = params.get("output_modalities", params.get("modalities"))
        if modalities is not None and not isinstance(modalities, list):
            raise EventError("response.output_modalities must be a list", "invalid_value")
        tools = params.get("tools")
        if tools is not None and not isinstance(tools, list):
            raise EventError("response.tools must be a list", "invalid_value")
        resp = _Response(ev.new_id("resp"), params)
        self._response = resp
        resp.task = self._spawn(self._run_response(resp), f"response:{resp.id}")

    def _response_wire(self, resp: _Response, status: str,
                       details: JsonObject | None) -> JsonObject:
        return {
            "id": resp.id, "object": "realtime.response", "status": status,
            "status_details": details, "output": resp.output,
            "conversation_id": self.conversation_id,
            "output_modalities": self._modalities(resp),
            "metadata": resp.params.get("metadata"),
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": ev.SAMPLE_RATE},
                                 "voice": self.settings.voice}},
            "usage": None,
        }

    def _modalities(self, resp: _Response) -> list[str]:
        wanted = resp.params.get("output_modalities", resp.params.get("modalities"))
        if isinstance(wanted, list):
            return ["audio"] if "audio" in wanted else ["text"]
        return list(self.settings.output_modalities)

    async def _run_response(self, resp: _Response) -> None:
        await self.send(ev.server_event(
            "response.created", response=self._response_wire(resp, "in_progress", None)
        ))
        status = "completed"
        details: JsonObject | None = None
        open_item: _OpenMessage | None = None
        try:
            sentences, changes = await self._think(resp)
            for change in changes:
                await self._function_call(resp, change)
            if sentences:
                open_item = _OpenMessage(self, resp, "audio" in self._modalities(resp))
                await open_item.begin()
                for sentence in sentences:
                    await open_item.say(sentence)
                await open_item.finish("completed")
                open_item = None
        except asyncio.CancelledError:
            status = "cancelled"
            details = {"type": "cancelled", "reason": resp.cancel_reason or "client_cancelled"}
            if open_item is not None:
                await open_item.finish("incomplete")
            await self._response_done(resp, status, details)
            raise
        except Exception as exc:  # the model failed: say so in the protocol, keep the session
            log.exception("realtime %s: response failed", self.id)
            status = "failed"
            details = {"type": "failed",
                       "error": {"type": "server_error", "code": "response_failed",
                                 "message": str(exc)}}
            if open_item is not None:
                await open_item.finish("incomplete")
        await self._response_done(resp, status, details)

    async def _response_done(self, resp: _Response, status: str,
                             details: JsonObject | None) -> None:
        if self._response is resp:
            self._response = None
        await self.send(ev.server_event(
            "response.done", response=self._response_wire(resp, status, details)
        ))

    async def _think(self, resp: _Response) -> tuple[list[str], list[NoteChange]]:
        """Run the brain on the turns since the last response: what to say, what it noted.

        ``metadata.meetbot_turn`` (meetbot's client sets it) says what kind of response this
        is: ``answer`` (the default: earlier turns are heard, the last one is answered),
        ``listen`` (take notes only), ``timekeeping`` (say the reminder that is due) or
        ``followup`` (nothing new to hear). ``metadata.item_id`` names the last turn the
        response is about, so turns committed after it wait for their own response.
        """
        metadata = resp.params.get("metadata") or {}
        mode = metadata.get("meetbot_turn", "answer")
        turns = self._take_turns(metadata.get("item_id")) if mode in ("answer", "listen") else []
        for turn in turns:
            if turn.transcription is not None:
                await turn.transcription
        changes: list[NoteChange] = []
        unsubscribe = self.notes.subscribe(changes.append)
        try:
            said: list[str] = []
            for k, turn in enumerate(turns):
                addressed = mode == "answer" and k == len(turns) - 1
                if turn.item.text.strip():
                    said = list(self._brain.handle(self._turn(turn, addressed)))
            if mode == "timekeeping":
                # The brain keeps its own clock on its copy of the notes; if it finds nothing
                # due (the item moved on meanwhile), nothing is said.
                cue = await self._brain.proactive(time.monotonic())
                said = [cue] if cue else []
            elif mode != "answer":
                said = []
        finally:
            unsubscribe()
        return [s for s in said if s.strip()], changes

    def _take_turns(self, upto: object) -> list[_UserTurn]:
        """The pending turns up to the item ``upto`` (all of them when it is not pending)."""
        ids = [t.item.id for t in self._pending]
        cut = ids.index(upto) + 1 if isinstance(upto, str) and upto in ids else len(ids)
        turns, self._pending = self._pending[:cut], self._pending[cut:]
        return turns

    def _turn(self, turn: _UserTurn, addressed: bool) -> Turn:
        now = time.monotonic()
        return Turn(
            speaker_id=turn.item.speaker or "user", speaker_name=turn.item.speaker or "user",
            text=turn.item.text, addressed=addressed, started_at=now, ended_at=now,
            wall_time=turn.wall_time,
        )

    async def _function_call(self, resp: _Response, change: NoteChange) -> None:
        """Mirror one brain change to the client as a call of its notes tool (if declared)."""
        call = change_to_call(change)
        declared = self.settings.tool_names()
        tools = resp.params.get("tools")
        if isinstance(tools, list):
            declared = {str(t.get("name")) for t in tools if isinstance(t, dict)}
        if call is None or call.name not in declared:
            return
        item = _Item(ev.new_id("item"), "function_call", call_id=ev.new_id("call"),
                     name=call.name, text=call.arguments_json)
        index = len(resp.output)
        common = {"response_id": resp.id, "output_index": index}
        await self.send(ev.server_event("response.output_item.added",
                                        item=item.to_wire("in_progress"), **common))
        self._remember(item)
        await self.send(ev.server_event("conversation.item.added",
                                        item=item.to_wire("in_progress")))
        await self.send(ev.server_event(
            "response.function_call_arguments.delta", item_id=item.id, call_id=item.call_id,
            delta=item.text, **common,
        ))
        await self.send(ev.server_event(
            "response.function_call_arguments.done", item_id=item.id, call_id=item.call_id,
            name=item.name, arguments=item.text, **common,
        ))
        resp.output.append(item.to_wire())
        await self.send(ev.server_event("response.output_item.done", item=item.to_wire(),
                                        **common))
        await self.send(ev.server_event("conversation.item.done", item=item.to_wire()))

    _HANDLERS: Final[dict[str, Callable[[RealtimeSession, Event], Awaitable[None]]]] = {
        "session.update": _session_update,
        "input_audio_buffer.append": _append,
        "input_audio_buffer.commit": _commit_event,
        "input_audio_buffer.clear": _clear,
        "conversation.item.create": _item_create,
        "conversation.item.delete": _item_delete,
        "conversation.item.retrieve": _item_retrieve,
        "conversation.item.truncate": _item_truncate,
        "response.create": _response_create,
        "response.cancel": _response_cancel,
    }


class _OpenMessage:
    """The assistant message of a response while it is being spoken (or written)."""

    def __init__(self, session: RealtimeSession, resp: _Response, audio: bool) -> None:
        self._s = session
        self._resp = resp
        self.audio = audio
        self.item = _Item(ev.new_id("item"), "message", "assistant")
        self._index = len(resp.output)
        self._samples = 0
        self._common = {"response_id": resp.id, "item_id": self.item.id,
                        "output_index": self._index, "content_index": 0}

    async def begin(self) -> None:
        s, item = self._s, self.item
        item.audio_ms = 1 if self.audio else 0  # marks it an audio item from the start
        s._remember(item)
        await s.send(ev.server_event("response.output_item.added", response_id=self._resp.id,
                                     output_index=self._index,
                                     item={**item.to_wire("in_progress"), "content": []}))
        await s.send(ev.server_event("conversation.item.added",
                                     item={**item.to_wire("in_progress"), "content": []}))
        part = {"type": "audio", "transcript": ""} if self.audio else {"type": "text", "text": ""}
        await s.send(ev.server_event("response.content_part.added", part=part, **self._common))

    async def say(self, sentence: str) -> None:
        s = self._s
        piece = (" " if self.item.text else "") + sentence
        self.item.text += piece
        if not self.audio:
            await s.send(ev.server_event("response.output_text.delta", delta=piece,
                                         **self._common))
            return
        await s.send(ev.server_event("response.output_audio_transcript.delta", delta=piece,
                                     **self._common))
        tts = s._engines.tts
        if tts is None:
            raise SpeechError("no text-to-speech engine")
        to_24k = StreamResampler(tts.sample_rate, ev.SAMPLE_RATE)
        pending = np.zeros(0, np.int16)
        async for chunk in tts.synthesize(sentence):
            pending = np.concatenate((pending, to_24k.process(chunk)))
            while len(pending) >= _DELTA_SAMPLES:
                await self._delta(pending[:_DELTA_SAMPLES])
                pending = pending[_DELTA_SAMPLES:]
        pending = np.concatenate((pending, to_24k.flush()))
        if len(pending):
            await self._delta(pending)

    async def _delta(self, pcm: PCM16) -> None:
        self._samples += len(pcm)
        self.item.audio_ms = max(1, self._samples * 1000 // ev.SAMPLE_RATE)
        await self._s.send(ev.server_event("response.output_audio.delta",
                                           delta=ev.encode_audio(pcm), **self._common))

    async def finish(self, status: str) -> None:
        s, item = self._s, self.item
        if self.audio:
            await s.send(ev.server_event("response.output_audio.done", **self._common))
            await s.send(ev.server_event("response.output_audio_transcript.done",
                                         transcript=item.text, **self._common))
            part: JsonObject = {"type": "audio", "transcript": item.text}
        else:
            await s.send(ev.server_event("response.output_text.done", text=item.text,
                                         **self._common))
            part = {"type": "text", "text": item.text}
        await s.send(ev.server_event("response.content_part.done", part=part, **self._common))
        wire = item.to_wire(status)
        self._resp.output.append(wire)
        await s.send(ev.server_event("response.output_item.done", response_id=self._resp.id,
                                     output_index=self._index, item=wire))
        await s.send(ev.server_event("conversation.item.done", item=wire))


# --- aiohttp wiring -----------------------------------------------------------------------------


@dataclass
class RealtimeService:
    """Every live Realtime session of one server, and what they share."""

    engines: LocalEngines = field(default_factory=shared_engines)
    api_key: str | None = None
    """When set, clients must send ``Authorization: Bearer <api_key>``."""
    sessions: set[RealtimeSession] = field(default_factory=set)
    sockets: dict[RealtimeSession, web.WebSocketResponse] = field(default_factory=dict)

    async def drop_all(self) -> None:
        """Close every session's socket (tests use it to cut connections mid-response)."""
        for ws in list(self.sockets.values()):
            with contextlib.suppress(Exception):
                await ws.close(code=1011, message=b"dropped")


REALTIME: Final = web.AppKey("meetbot_realtime", RealtimeService)


def _authorized(request: web.Request, service: RealtimeService) -> bool:
    if service.api_key is None:
        return True
    header = request.headers.get("Authorization", "")
    return header == f"Bearer {service.api_key}"


async def realtime_handler(request: web.Request) -> web.StreamResponse:
    """``GET /v1/realtime``: one Realtime session per WebSocket."""
    service = request.app[REALTIME]
    if not _authorized(request, service):
        return web.json_response(
            {"error": {"type": "invalid_request_error", "code": "invalid_api_key",
                       "message": "Incorrect API key provided."}}, status=401)
    ws = web.WebSocketResponse(max_msg_size=ev.MAX_EVENT_BYTES, heartbeat=_WS_HEARTBEAT_S,
                               protocols=("realtime",))
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="This endpoint takes a WebSocket connection "
                            "speaking the OpenAI Realtime protocol.\n")
    await ws.prepare(request)
    lock = asyncio.Lock()

    async def send(event: JsonObject) -> None:
        async with lock:
            await ws.send_str(ev.dumps(event))

    model = request.query.get("model") or "meetbot-local"
    session = RealtimeSession(send, service.engines, model=model)
    service.sessions.add(session)
    service.sockets[session] = ws
    log.info("realtime session %s opened (model %s)", session.id, model)
    try:
        await service.engines.load()
        await session.start()
        async for frame in ws:
            if frame.type is WSMsgType.TEXT:
                await session.handle(frame.data)
            elif frame.type is WSMsgType.BINARY:
                await session.send(ev.error_event(
                    "binary frames are not part of the protocol; send JSON text",
                    "invalid_json"))
            elif frame.type is WSMsgType.ERROR:
                log.info("realtime session %s: connection error: %s", session.id, ws.exception())
                break
    finally:
        service.sessions.discard(session)
        service.sockets.pop(session, None)
        await session.close()
        if not ws.closed:
            await ws.close()
        log.info("realtime session %s closed", session.id)
    return ws


def add_realtime_routes(app: web.Application, service: RealtimeService | None = None) -> None:
    """Mount the Realtime endpoint at ``/v1/realtime`` on ``app``.

    Models are not loaded here: the first connection (or ``service.engines.load()``) does it,
    so a room server that never sees a Realtime client never pays for them.
    """
    service = service or RealtimeService()
    app[REALTIME] = service

    async def close_sessions(app: web.Application) -> None:
        await app[REALTIME].drop_all()

    app.router.add_get(REALTIME_PATH, realtime_handler)
    app.on_shutdown.append(close_sessions)


def create_realtime_app(service: RealtimeService | None = None) -> web.Application:
    """An application with only the Realtime endpoint (the room server mounts it too)."""
    app = web.Application()
    add_realtime_routes(app, service)
    return app


@dataclass
class RunningRealtimeServer:
    """A started stand-alone Realtime server (``close()`` stops it and drops its sessions)."""

    runner: web.AppRunner
    host: str
    port: int
    service: RealtimeService

    @property
    def url(self) -> str:
        """The WebSocket URL a client dials, e.g. ``ws://127.0.0.1:8765/v1/realtime``."""
        return f"ws://{self.host}:{self.port}{REALTIME_PATH}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` for the ``openai`` SDK (it appends ``/realtime``)."""
        return f"http://{self.host}:{self.port}/v1"

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_realtime_server(host: str = "127.0.0.1", port: int = 0,
                                service: RealtimeService | None = None) -> RunningRealtimeServer:
    """Serve only the Realtime endpoint in this event loop; ``port=0`` picks a free port."""
    import socket

    service = service or RealtimeService()
    app = create_realtime_app(service)
    sock = socket.create_server((host, port))
    sock.setblocking(False)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    bound_host, bound_port = sock.getsockname()[:2]
    return RunningRealtimeServer(runner, str(bound_host), int(bound_port), service)
