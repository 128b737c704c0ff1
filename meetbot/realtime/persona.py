"""The speech-to-speech persona: the bot's voice is a Realtime session, its ears stay its own.

What goes to the session, and why (the addressed-only rule in a group call):

- meetbot hears each participant on their own track and cuts their speech into utterances with
  their own VAD, exactly as in the cascade. Each utterance goes to the session as a turn of its
  own, preceded by a ``Speaker: NAME`` system message, so attribution stays per speaker (the
  transcript line is written under that name, and the model knows who said what).
- The session's own turn detection never starts a response (``create_response: false``). With
  ``turn_detection="none"`` (the default) the bot commits each utterance itself; with
  ``server_vad``/``semantic_vad`` it appends the utterance plus enough silence for the server
  to commit it, and maps the server's items back to speakers by their position in the audio.
- When the input transcription of a turn arrives, the same :class:`~meetbot.addressing.Addressing`
  rule as in the cascade decides whether the bot was addressed (its name, a wake phrase, a
  follow-up, or a one-person call, where every turn is addressed and the answer is requested
  at once, before the transcript). Addressed: ``response.create`` for an audio answer.
  Not addressed: a text-only "listen" response in which the model may only call the notes
  tools, so notes are taken from the whole meeting, as the cascade's brain does.

What comes back: audio deltas go into the same paced voice track the cascade uses; what the
room actually heard is written to the transcript; when someone talks over the bot, playback
stops, the response is cancelled and the item truncated to what was played. Notes tool calls
run against the bot's notes and their results go back into the session. Timebox reminders come
from a timekeeper on the bot's notes and are spoken by the model when the room is quiet.

When the connection drops, the client reconnects with backoff, sets the session up again (with
the notes so far as context) and re-sends the turns that were not yet answered; if it cannot
reconnect within a few seconds, the cascade persona takes over for the rest of the meeting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from meetbot.addressing import Addressing
from meetbot.config import RealtimeConfig
from meetbot.events import SpeechStarted, TurnTiming, Utterance
from meetbot.media.outbound import OUT_RATE, VoiceSource
from meetbot.meeting.notes import MeetingNotes, NotesHolder
from meetbot.meeting.timekeeper import Cue, Timekeeper
from meetbot.meeting.tools import NOTES_TOOLS, run_tool
from meetbot.metrics import LatencyLog
from meetbot.realtime import events as ev
from meetbot.realtime.client import RealtimeClient, State, realtime_url
from meetbot.realtime.events import Event, JsonObject
from meetbot.realtime.server import CONTEXT_PREFIX, JOINED_PREFIX, REALTIME_PATH, SPEAKER_PREFIX
from meetbot.speech.audio import resample

if TYPE_CHECKING:
    from meetbot.bot import BotSession, Persona
    from meetbot.config import BotConfig

log = logging.getLogger(__name__)

TURN_DETECTION_MODES: Final = ("none", "server_vad", "semantic_vad")
_APPEND_SAMPLES: Final = ev.SAMPLE_RATE // 2
"""Audio goes out in 0.5 s appends: small events, few of them."""
_PAUSE_BEFORE_PROACTIVE_S: Final = 0.8
_RESPONSE_START_TIMEOUT_S: Final = 15.0
_RESPONSE_TIMEOUT_S: Final = 90.0
_RESEND_WITHIN_S: Final = 30.0
"""Unanswered turns older than this are not re-sent after a reconnect: the meeting moved on."""
_MAX_TRACKED_ITEMS: Final = 64
_MAX_WAITING_TURNS: Final = 8
"""Utterances held while reconnecting; older ones are dropped (the meeting has moved on)."""
_TICK_S: Final = 0.1
_DECIDE_TIMEOUT_S: Final = 10.0
"""A turn whose transcript never came stops holding back timekeeping after this long."""

ListenInstructions: Final = (
    "Listen only. If the last turn adds to the agenda, starts or ends an agenda item, sets a "
    "timebox, or contains an action item, a decision or a note worth keeping, record it with "
    "the notes tools. Do not answer and do not produce any other output."
)

RequestKind = Literal["answer", "listen", "timekeeping", "followup"]


def default_instructions(bot_name: str) -> str:
    """What a Realtime model is told about its job in the meeting."""
    return (
        f"You are {bot_name}, a voice assistant taking part in a meeting with several people. "
        f"You keep the meeting on track: the agenda, timeboxes, action items and decisions. "
        f"A system message 'Speaker: NAME' says who speaks next; 'Meeting context' messages "
        f"hold the notes so far as JSON. Answer only when a response is requested, in one or "
        f"two short spoken sentences, and confirm what you wrote down. Keep the notes only "
        f"through the notes tools (get_notes reads them), with owners and due dates as said."
    )


def default_realtime_url(page_url: str) -> str:
    """meetbot's own Realtime server on the room server of ``page_url``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(page_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, REALTIME_PATH, "", ""))


@dataclass
class _Turn:
    """One utterance on its way through the session."""

    speaker_id: str
    speaker_name: str
    utterance: Utterance
    timing: TurnTiming
    wall_time: float
    item_ids: list[str] = field(default_factory=list)
    text: str | None = None
    recorded: bool = False
    answer_requested: bool = False
    answered: bool = False
    """Some of an answer to it was played (so it is not re-sent after a reconnect)."""
    start_ms: int = 0
    end_ms: int = 0
    """Where its audio sits on this connection's input timeline (server VAD mapping)."""
    sent_at: float = 0.0
    settled: bool = False
    """The response about it (answer or listen) is over, whatever it said."""
    decided: bool = False
    """Its transcript arrived and addressing was decided (or there was nothing to decide)."""


@dataclass
class _Request:
    kind: RequestKind
    turn: _Turn | None = None
    id: str = ""
    """Echoed back in ``response.metadata``: tells our responses from ones nobody asked for."""
    cue: Cue | None = None
    response_id: str | None = None
    sent_at: float | None = None
    cancelled: bool = False
    had_tools: bool = False
    spoke: bool = False


@dataclass
class _Speech:
    """An audio item of a response being played into the call."""

    item_id: str
    request: _Request
    tag: str
    transcript: str = ""
    queued: int = 0
    """Samples at the voice rate (48 kHz) handed to the voice source."""
    interrupted: bool = False
    finishing: bool = False


class RealtimePersona:
    """Implements the bot's ``Persona`` over a Realtime session (see the module docstring)."""

    def __init__(
        self,
        voice: VoiceSource,
        config: RealtimeConfig,
        url: str,
        notes: NotesHolder,
        *,
        bot_name: str = "assistant",
        addressing: Addressing | None = None,
        people_in_call: Callable[[], int] = lambda: 1,
        someone_speaking: Callable[[], bool] = lambda: False,
        participants: Callable[[], list[str]] = list,
        latency: LatencyLog | None = None,
        fallback: Persona | None = None,
        on_caption: Callable[[str, str], None] | None = None,
        on_speaking: Callable[[bool], None] | None = None,
    ) -> None:
        mode = config.turn_detection.strip().lower()
        if mode not in TURN_DETECTION_MODES:
            raise ValueError(f"turn_detection must be one of {TURN_DETECTION_MODES}, "
                             f"not {config.turn_detection!r}")
        for fmt in (config.input_audio_format, config.output_audio_format):
            if fmt != "pcm16":
                raise ValueError(f"only pcm16 audio is supported, not {fmt!r}")
        self._voice = voice
        self.config = config
        self._mode = mode
        self._holder = notes
        self._bot_name = bot_name
        self._addressing = addressing or Addressing(bot_name)
        self._people_in_call = people_in_call
        self._someone_speaking = someone_speaking
        self._participants = participants
        self.latency = latency or LatencyLog()
        self._fallback = fallback
        self._on_caption = on_caption
        self._on_speaking = on_speaking
        self.instructions = config.instructions or default_instructions(bot_name)
        self.timekeeper = Timekeeper(notes.notes)
        self.client = RealtimeClient(
            realtime_url(url, config.model),
            api_key=config.api_key,
            on_event=self._on_event,
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
            on_failed=self._on_failed,
            attempts=config.reconnect_attempts,
            give_up_after_s=config.give_up_after_s,
            give_up=config.fallback and fallback is not None,
            connect_timeout_s=config.connect_timeout_s,
        )
        self.fallback_active = False
        self._waiting: deque[_Turn] = deque(maxlen=_MAX_WAITING_TURNS)
        """Turns to send once connected (arrived while reconnecting, or not yet answered)."""
        self._uncommitted: deque[_Turn] = deque()
        self._by_item: dict[str, _Turn] = {}
        self._timeline: list[_Turn] = []
        self._sent: deque[_Turn] = deque(maxlen=32)
        self._sent_samples = 0
        self._requests: deque[_Request] = deque()
        self._active: _Request | None = None
        self._by_response: dict[str, _Request] = {}
        self._speeches: dict[str, _Speech] = {}
        self._playing: list[_Speech] = []
        self._last_speech_end = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._speaking_flag = False
        self._turns = 0
        self._request_count = 0
        self._metadata_echoed = False
        self.interruptions: list[tuple[float, str]] = []
        """(monotonic time, heard text) of every barge-in."""

    @property
    def notes(self) -> MeetingNotes:
        return self._holder.notes

    @property
    def connected(self) -> bool:
        return self.client.state is State.CONNECTED

    # ---- Persona ----------------------------------------------------------------------------

    def start(self) -> None:
        self.client.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="realtime-tick")

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.client.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.timekeeper.close()
        if self._fallback is not None:
            await self._fallback.close()

    def _withdraw_cue(self) -> None:
        """Someone started talking: a reminder not yet audible waits for the next pause.

        The bot never talks over a speaker on its own initiative (DESIGN.md); an answer they
        asked for is another matter, and barge-in handles that once it plays.
        """
        for request in [r for r in self._requests if r.kind == "timekeeping"]:
            self._requests.remove(request)
            self.timekeeper.defer(time.monotonic())
        active = self._active
        if (active is not None and active.kind == "timekeeping" and not active.spoke
                and not active.cancelled):
            active.cancelled = True
            if active.response_id is not None:
                self.client.send(ev.response_cancel(active.response_id))
            self.timekeeper.defer(time.monotonic())
            log.info("someone started speaking; the reminder waits for the next pause")

    def on_pause(self, utterance: Utterance) -> None:
        if self.fallback_active and self._fallback is not None:
            self._fallback.on_pause(utterance)

    def on_speech_start(self, event: SpeechStarted) -> None:
        """Barge-in: stop playing, cancel the response, truncate the item to what was heard."""
        if self.fallback_active and self._fallback is not None:
            self._fallback.on_speech_start(event)
            return
        self._withdraw_cue()
        playing = [s for s in self._playing if not s.interrupted]
        active = self._active
        # A response that has started speaking is cut even in a gap between its sentences (a
        # slow model); one still thinking is left alone, as in the cascade.
        speaking = (active is not None and active.spoke and not active.cancelled
                    and active.kind != "listen")
        if not playing and not speaking:
            return
        if self._voice.busy:
            self._voice.flush()
        for speech in playing:
            speech.interrupted = True
            played_ms = int(self._voice.played_seconds(speech.tag) * 1000)
            self.client.send(ev.item_truncate(speech.item_id, played_ms))
            self._finish_soon(speech)  # what was heard is known now; no need to wait for done
        if active is not None and speaking:
            active.cancelled = True
            self.client.send(ev.response_cancel(active.response_id))
        log.info("%s interrupted the bot; stopped speaking", event.participant_name)

    async def on_utterance(self, utterance: Utterance) -> None:
        if self.fallback_active and self._fallback is not None:
            await self._fallback.on_utterance(utterance)
            return
        self._last_speech_end = max(self._last_speech_end, utterance.ended_at)
        timing = TurnTiming(utterance.participant_name, speech_end=utterance.ended_at)
        timing.extra["endpointing"] = utterance.detected_at - utterance.ended_at
        turn = _Turn(
            utterance.participant_id, utterance.participant_name, utterance, timing,
            wall_time=time.time() - (time.monotonic() - utterance.ended_at),
        )
        if self.connected:
            self._send_turn(turn)
        else:
            log.info("realtime session not connected; holding %s's turn", turn.speaker_name)
            self._waiting.append(turn)

    # ---- instructions and participants ----------------------------------------------------

    def set_instructions(self, text: str) -> None:
        """New instructions for the live session (and for every reconnect after)."""
        self.instructions = text.strip() or default_instructions(self._bot_name)
        log.info("realtime instructions updated (%d characters)", len(self.instructions))
        if self.connected:
            self.client.send(ev.session_update({"type": "realtime",
                                                "instructions": self.instructions}))

    def participant_joined(self, name: str) -> None:
        if self.connected and not self.fallback_active:
            self.client.send(ev.item_create(ev.system_message(f"{JOINED_PREFIX} {name}")))

    def on_room_message(self, message: dict[str, Any]) -> None:
        """Signaling messages for the bot: ``instructions`` updates the live session."""
        if message.get("type") == "instructions" and isinstance(message.get("text"), str):
            self.set_instructions(message["text"])

    # ---- the session ------------------------------------------------------------------------

    def session_config(self) -> JsonObject:
        """The ``session`` object of ``session.update``, from the configuration."""
        pcm = {"type": "audio/pcm", "rate": ev.SAMPLE_RATE}
        turn_detection: JsonObject | None = None
        if self._mode != "none":
            turn_detection = {"type": self._mode, "create_response": False,
                              "interrupt_response": False}
        session: JsonObject = {
            "type": "realtime",
            "model": self.config.model,
            "instructions": self.instructions,
            "output_modalities": ["audio"] if "audio" in self.config.modalities else ["text"],
            "audio": {
                "input": {
                    "format": pcm,
                    "transcription": {"model": self.config.transcription_model},
                    "turn_detection": turn_detection,
                },
                "output": {"format": pcm, "voice": self.config.voice},
            },
            "tools": list(NOTES_TOOLS),
            "tool_choice": "auto",
        }
        if self.config.temperature is not None:
            session["temperature"] = self.config.temperature
        return session

    def _context_message(self) -> str:
        context = {
            "bot_name": self._bot_name,
            "participants": self._participants(),
            "notes": self.notes.to_dict(transcript_limit=20),
        }
        return f"{CONTEXT_PREFIX} {json.dumps(context, ensure_ascii=False)}"

    async def _on_connected(self, reconnected: bool) -> None:
        self._reset_connection_state()
        self.client.send(ev.session_update(self.session_config()))
        self.client.send(ev.item_create(ev.system_message(self._context_message())))
        if reconnected:
            log.info("realtime session re-established; %d turn(s) to re-send",
                     len(self._waiting))
        while self._waiting:
            self._send_turn(self._waiting.popleft())

    def _reset_connection_state(self) -> None:
        self._uncommitted.clear()
        self._by_item.clear()
        self._timeline.clear()
        self._sent.clear()
        self._sent_samples = 0
        self._requests.clear()
        self._active = None
        self._by_response.clear()

    def _on_disconnected(self) -> None:
        """Keep what was said; re-send what was not answered; finish what is playing."""
        pending: list[_Turn] = list(self._uncommitted)
        pending += [t for t in self._by_item.values() if t not in pending]
        for req in [self._active, *self._requests]:
            if req is not None and req.turn is not None and req.turn not in pending:
                pending.append(req.turn)
        now = time.monotonic()
        resend = [t for t in pending
                  if not t.answered and not t.settled and now - t.sent_at < _RESEND_WITHIN_S
                  and (t.text is None or t.answer_requested)]
        for turn in sorted(resend, key=lambda t: t.utterance.ended_at, reverse=True):
            turn.item_ids.clear()
            turn.text = None
            self._waiting.appendleft(turn)
        for speech in list(self._speeches.values()):
            self._finish_soon(speech)
        self._reset_connection_state()

    def _on_failed(self) -> None:
        if self._fallback is None or not self.config.fallback:
            log.error("the speech-to-speech session is unavailable; still trying")
            return
        if self.fallback_active:
            return
        log.warning("the speech-to-speech session is unavailable; the cascade takes over")
        self.fallback_active = True
        self._fallback.start()
        waiting = list(self._waiting)
        self._waiting.clear()
        if waiting:
            self._spawn(self._hand_over(waiting), "realtime-handover")

    async def _hand_over(self, turns: list[_Turn]) -> None:
        assert self._fallback is not None
        for turn in turns:
            await self._fallback.on_utterance(turn.utterance)

    def _send_turn(self, turn: _Turn) -> None:
        """Send one utterance to the session as a turn of its own, labelled with its speaker."""
        client = self.client
        client.send(ev.item_create(ev.system_message(f"{SPEAKER_PREFIX} {turn.speaker_name}")))
        utt = turn.utterance
        pcm = resample(utt.pcm, utt.sample_rate, ev.SAMPLE_RATE)
        if self._mode != "none":
            # Enough silence after the speech for the server's VAD to close the turn.
            silence = np.zeros(int(ev.SAMPLE_RATE * 1.2), np.int16)
            pcm = np.concatenate((pcm, silence))
        turn.start_ms = self._sent_samples * 1000 // ev.SAMPLE_RATE
        for start in range(0, len(pcm), _APPEND_SAMPLES):
            client.send(ev.input_audio_append(pcm[start:start + _APPEND_SAMPLES]))
        self._sent_samples += len(pcm)
        turn.end_ms = self._sent_samples * 1000 // ev.SAMPLE_RATE
        turn.sent_at = time.monotonic()
        turn.decided = False
        self._sent.append(turn)
        if self._mode == "none":
            client.send(ev.input_audio_commit())
            self._uncommitted.append(turn)
        else:
            self._timeline.append(turn)
            del self._timeline[:-32]
        if turn.answer_requested or self._people_in_call() <= 1:
            # Re-sent after a reconnect and known to be addressed, or a one-person call where
            # every turn is: ask for the answer right away, without waiting for the transcript.
            turn.answer_requested = False
            self._request_answer(turn)

    # ---- responses --------------------------------------------------------------------------

    def _request_answer(self, turn: _Turn) -> None:
        if turn.answer_requested:
            return
        turn.answer_requested = True
        self._enqueue(_Request("answer", turn))

    def _enqueue(self, request: _Request, first: bool = False) -> None:
        if first:
            self._requests.appendleft(request)
        else:
            self._requests.append(request)
        self._pump()

    def _pump(self) -> None:
        """Start the next response when none is active (the API allows one at a time)."""
        if self._active is not None or not self._requests or not self.connected:
            return
        request = self._requests.popleft()
        self._active = request
        self._request_count += 1
        request.id = f"r{self._request_count}"
        request.sent_at = time.monotonic()
        event = ev.response_create(self._response_params(request))
        event["event_id"] = request.id  # an error about it names it
        self.client.send(event)

    def _response_params(self, request: _Request) -> JsonObject:
        metadata: dict[str, str] = {"meetbot_turn": request.kind, "meetbot_request": request.id}
        if request.turn is not None:
            metadata["speaker"] = request.turn.speaker_name[:512]
            if request.turn.item_ids and request.kind in ("answer", "listen"):
                # Turns committed after this one wait for their own response.
                metadata["item_id"] = request.turn.item_ids[-1]
        if request.kind == "listen":
            return {"output_modalities": ["text"], "metadata": metadata,
                    "instructions": f"{self.instructions}\n\n{ListenInstructions}"}
        instructions = self.instructions
        if request.kind == "answer" and request.turn is not None:
            instructions += f"\n\nThe last turn was spoken by {request.turn.speaker_name}."
        elif request.kind == "timekeeping" and request.cue is not None:
            instructions += ("\n\nKeep time: say this to the room now, briefly and in your own "
                             f"words: {request.cue.text}")
        return {"output_modalities": ["audio"], "metadata": metadata,
                "instructions": instructions}

    def _request_for(self, event: Event) -> _Request | None:
        response_id = event.opt_text("response_id")
        if response_id is None:
            return None
        return self._by_response.get(response_id)

    # ---- server events ----------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        handler = _EVENT_HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)
        else:
            log.debug("realtime: ignored %s", event.type)

    def _on_error(self, event: Event) -> None:
        error = event.data.get("error")
        if not isinstance(error, dict):
            log.warning("realtime server error without details: %s", str(event.data)[:200])
            return
        code = error.get("code")
        log.warning("realtime server error %s: %s", code, str(error.get("message"))[:300])
        active = self._active
        if active is None or active.response_id is not None:
            return
        if code == "conversation_already_has_active_response":
            # Refused because the server is busy with a response of its own: ask again after.
            self._requests.appendleft(active)
            self._active = None
        elif error.get("event_id") == active.id:
            # Our response.create was refused outright: the meeting goes on without it.
            self._active = None
            self._pump()

    def _on_committed(self, event: Event) -> None:
        item_id = event.text("item_id")
        if self._mode == "none":
            if not self._uncommitted:
                log.debug("realtime: a commit we did not make (%s)", item_id)
                return
            turn = self._uncommitted.popleft()
            self._track(item_id, turn)

    def _track(self, item_id: str, turn: _Turn) -> None:
        turn.item_ids.append(item_id)
        self._by_item[item_id] = turn
        while len(self._by_item) > _MAX_TRACKED_ITEMS:  # a long meeting: forget the oldest
            del self._by_item[next(iter(self._by_item))]

    def _on_speech_stopped(self, event: Event) -> None:
        """Server VAD: find whose audio this item is by where it ended on the timeline."""
        if self._mode == "none":
            return
        item_id = event.text("item_id")
        end_ms = event.number("audio_end_ms")
        for turn in self._timeline:
            if turn.start_ms <= end_ms <= turn.end_ms + 200:
                self._track(item_id, turn)
                return
        log.info("realtime: server turn %s (ending at %d ms) matches no utterance", item_id,
                 end_ms)

    def _on_transcript(self, event: Event) -> None:
        turn = self._by_item.get(event.text("item_id"))
        if turn is None:
            return
        text = event.text("transcript").strip()
        turn.timing.transcript_ready = time.monotonic()
        turn.decided = True
        if not text:
            return
        turn.text = f"{turn.text} {text}" if turn.text else text
        turn.timing.text = turn.text
        if not turn.recorded or self._mode != "none":
            turn.recorded = True
            self.notes.add_transcript_line(turn.speaker_name, text, turn.wall_time)
            if self._on_caption is not None:
                self._on_caption(turn.speaker_name, text)
        if turn.answer_requested:
            return
        # The follow-up window is judged by when they started speaking, not by when the
        # transcript came back: a slow transcription must not close the window on them.
        addressed = self._addressing.decide(
            turn.speaker_id, text, self._people_in_call(), turn.utterance.started_at
        )
        log.info("%s%s: %s", turn.speaker_name, " (to bot)" if addressed else "", text)
        if addressed:
            self._request_answer(turn)
        elif self.config.notes_from_unaddressed:
            self._enqueue(_Request("listen", turn))

    def _on_transcription_failed(self, event: Event) -> None:
        turn = self._by_item.get(event.text("item_id"))
        if turn is not None:
            turn.decided = True
        log.warning("realtime: transcription of %s failed: %s", event.data.get("item_id"),
                    str(event.data.get("error"))[:200])

    def _on_response_created(self, event: Event) -> None:
        response = event.mapping("response")
        response_id = response.get("id")
        if not isinstance(response_id, str):
            raise ev.EventError("response.created without a response id")
        active = self._active
        metadata = response.get("metadata")
        echoed = metadata.get("meetbot_request") if isinstance(metadata, dict) else None
        if echoed is not None:
            self._metadata_echoed = True
        # Servers that do not echo metadata: responses are ours in the order we asked.
        ours = active is not None and active.response_id is None and (
            echoed == active.id or (echoed is None and not self._metadata_echoed))
        if active is not None and ours:
            active.response_id = response_id
            self._by_response[response_id] = active
            if active.cancelled:
                self.client.send(ev.response_cancel(response_id))
            return
        # A response we did not ask for (a server that ignored create_response: false): the
        # addressed-only rule says it is not spoken.
        log.info("realtime: cancelling a response the bot did not request (%s)", response_id)
        stray = _Request("followup", cancelled=True, response_id=response_id)
        self._by_response[response_id] = stray
        self.client.send(ev.response_cancel(response_id))

    def _on_audio_delta(self, event: Event) -> None:
        request = self._request_for(event)
        if request is None or request.cancelled or request.kind == "listen":
            return
        pcm = ev.decode_audio(event.text("delta"))
        item_id = event.text("item_id")
        if request.kind == "timekeeping" and not request.spoke:
            if self._someone_speaking():
                self._withdraw_cue()
                return
            if request.cue is not None:
                self.timekeeper.mark_spoken(request.cue)
        speech = self._speech(item_id, request)
        if speech.interrupted or not len(pcm):
            return
        turn = request.turn
        if turn is not None:
            turn.answered = True
            if turn.timing.first_audio_synth is None:
                turn.timing.first_audio_synth = time.monotonic()
        request.spoke = True
        self._voice.enqueue(pcm, ev.SAMPLE_RATE, tag=speech.tag)
        speech.queued += len(pcm) * OUT_RATE // ev.SAMPLE_RATE

    def _speech(self, item_id: str, request: _Request) -> _Speech:
        """The audio item ``item_id`` of ``request``, created by its first event."""
        speech = self._speeches.get(item_id)
        if speech is None:
            self._turns += 1
            speech = _Speech(item_id, request, tag=f"rt{self._turns}:{item_id}")
            self._speeches[item_id] = speech
            self._playing.append(speech)
            self._set_speaking(True)
        return speech

    def _on_transcript_delta(self, event: Event) -> None:
        request = self._request_for(event)
        if request is None or request.cancelled or request.kind == "listen":
            return
        if request.turn is not None and request.turn.timing.first_reply_text is None:
            request.turn.timing.first_reply_text = time.monotonic()
        speech = self._speech(event.text("item_id"), request)
        if not speech.interrupted:
            speech.transcript += event.text("delta")

    def _on_transcript_done(self, event: Event) -> None:
        speech = self._speeches.get(event.text("item_id"))
        if speech is not None:
            speech.transcript = event.text("transcript")

    def _on_function_call(self, event: Event) -> None:
        request = self._request_for(event)
        call_id, name = event.text("call_id"), event.text("name")
        speaker = request.turn.speaker_name if request and request.turn else ""
        result = run_tool(self.notes, name, event.text("arguments", ""), speaker=speaker,
                          wall_time=request.turn.wall_time if request and request.turn else None)
        log.info("tool %s(%s) -> %s", name, event.data.get("arguments"), result.output[:200])
        if request is not None:
            request.had_tools = True
        self.client.send(ev.item_create(ev.function_call_output(call_id, result.output)))

    def _on_response_done(self, event: Event) -> None:
        response = event.mapping("response")
        response_id = response.get("id")
        request = self._by_response.pop(response_id, None) if isinstance(response_id, str) else None
        status = response.get("status")
        if status == "failed":
            log.warning("realtime response failed: %s", str(response.get("status_details"))[:300])
        if request is not None:
            if request.turn is not None and request.kind in ("answer", "listen"):
                request.turn.settled = True
            for speech in [s for s in self._speeches.values() if s.request is request]:
                self._finish_soon(speech)
            if (request.kind == "timekeeping" and not request.spoke and not request.cancelled
                    and request.cue is not None):
                # The model had nothing to say about it: do not keep asking.
                self.timekeeper.mark_spoken(request.cue)
            if (request.kind == "answer" and request.had_tools and not request.spoke
                    and not request.cancelled and status == "completed"):
                # The model took notes but has not spoken yet: let it say what it did.
                self._enqueue(_Request("followup", request.turn), first=True)
        if self._active is not None and (self._active is request or (
                request is None and self._active.response_id == response_id)):
            self._active = None
        self._pump()

    # ---- playback bookkeeping ---------------------------------------------------------------

    def _finish_soon(self, speech: _Speech) -> None:
        if not speech.finishing:
            speech.finishing = True
            self._spawn(self._finish(speech), f"played:{speech.item_id}")

    async def _finish(self, speech: _Speech) -> None:
        """Wait until the room heard it (or was cut off), then write down what was heard."""
        await self._voice.wait_played(speech.tag)  # returns at once when flushed (barge-in)
        request, turn = speech.request, speech.request.turn
        first_sent = self._voice.first_sent_at(speech.tag)
        played = self._voice.finish_tag(speech.tag).played_samples
        self._speeches.pop(speech.item_id, None)
        if speech in self._playing:
            self._playing.remove(speech)
        if not self._playing:
            self._set_speaking(False)
        said = speech.transcript.strip()
        if speech.interrupted and speech.queued:
            said = ev.heard_prefix(said, played / speech.queued)
            self.interruptions.append((time.monotonic(), said))
        if not said:
            return
        self.notes.add_transcript_line(self._bot_name, said, is_bot=True)
        if self._on_caption is not None:
            self._on_caption(self._bot_name, said)
        now = time.monotonic()
        self._addressing.bot_replied(turn.speaker_id if turn else None, said, now)
        self._last_speech_end = max(self._last_speech_end, now)
        if turn is not None and request.kind in ("answer", "followup"):
            timing = turn.timing
            timing.first_audio_sent = first_sent
            timing.reply = said
            self.latency.record(timing)

    def _set_speaking(self, speaking: bool) -> None:
        if speaking != self._speaking_flag:
            self._speaking_flag = speaking
            if self._on_speaking is not None:
                self._on_speaking(speaking)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- the clock --------------------------------------------------------------------------

    async def _tick(self) -> None:
        """Keep time (into pauses only) and unstick responses a server never finished."""
        while not self.fallback_active:
            await asyncio.sleep(_TICK_S)
            try:
                self._keep_time(time.monotonic())
            except Exception:  # a bug here must not stop the clock for the rest of the meeting
                log.exception("realtime timekeeping failed; going on")

    def _keep_time(self, now: float) -> None:
        self._check_stuck(now)
        if (self.fallback_active or not self.connected or self._active is not None
                or self._requests or self._playing or self._voice.busy
                or self._someone_speaking()
                or now - self._last_speech_end < _PAUSE_BEFORE_PROACTIVE_S
                or self._undecided(now)):
            return
        cue = self.timekeeper.due_cue(now)
        if cue is not None:
            # Marked spoken when its audio arrives; withdrawn if someone speaks first.
            self._enqueue(_Request("timekeeping", cue=cue))

    def _undecided(self, now: float) -> bool:
        """Someone just spoke and we do not know yet whether to the bot: not a pause to fill."""
        return any(not t.decided and now - t.sent_at < _DECIDE_TIMEOUT_S for t in self._sent)

    def _check_stuck(self, now: float) -> None:
        active = self._active
        if active is None or active.sent_at is None:
            return
        waited = now - active.sent_at
        if active.response_id is None and waited > _RESPONSE_START_TIMEOUT_S:
            log.warning("realtime: no response.created after %.0f s; moving on", waited)
        elif waited > _RESPONSE_TIMEOUT_S:
            log.warning("realtime: response %s never finished; cancelling", active.response_id)
            self.client.send(ev.response_cancel(active.response_id))
        else:
            return
        self._active = None
        self._pump()


_EVENT_HANDLERS: Final[dict[str, Callable[[RealtimePersona, Event], None]]] = {
    "error": RealtimePersona._on_error,
    "input_audio_buffer.committed": RealtimePersona._on_committed,
    "input_audio_buffer.speech_stopped": RealtimePersona._on_speech_stopped,
    "conversation.item.input_audio_transcription.completed": RealtimePersona._on_transcript,
    "conversation.item.input_audio_transcription.failed":
        RealtimePersona._on_transcription_failed,
    "response.created": RealtimePersona._on_response_created,
    "response.output_audio.delta": RealtimePersona._on_audio_delta,
    "response.output_audio_transcript.delta": RealtimePersona._on_transcript_delta,
    "response.output_audio_transcript.done": RealtimePersona._on_transcript_done,
    "response.function_call_arguments.done": RealtimePersona._on_function_call,
    "response.done": RealtimePersona._on_response_done,
}


def attach_realtime(bot: BotSession, config: BotConfig,
                    fallback: Persona | None = None) -> RealtimePersona:
    """Make ``bot`` speak through a Realtime session; ``fallback`` takes over if it cannot.

    Expects the assistant to be wired already (``bot.notes_store`` set, the cascade persona
    built as the fallback), so notes, captions and the notes push work as in the cascade.
    """
    store = bot.notes_store
    if store is None:
        raise RuntimeError("attach_realtime needs the bot's notes store")
    rt = config.realtime
    url = rt.websocket_url or default_realtime_url(bot.address.page_url)
    wake = config.wake_phrases or (f"hey {config.name}", f"ok {config.name}")
    persona = RealtimePersona(
        bot.voice, rt, url, store,
        bot_name=config.name,
        addressing=Addressing(config.name, wake, config.follow_up_s),
        people_in_call=lambda: sum(1 for p in bot.people if p.kind != "bot"),
        someone_speaking=lambda: any(lis.speaking for lis in bot.participant_listeners.values()),
        participants=lambda: [p.name for p in bot.people if p.kind != "bot"],
        latency=LatencyLog(config.latency_log),
        fallback=fallback,
        on_caption=lambda speaker, text: bot.send_soon(
            {"type": "caption", "text": text, "final": True, "speaker": speaker}
        ),
        on_speaking=lambda speaking: bot.send_soon({"type": "speaking", "speaking": speaking}),
    )
    bot.on("listening", lambda peer: persona.participant_joined(peer.name))
    bot.on("room_message", persona.on_room_message)
    bot.persona = persona
    return persona

