"""One bot session: joins a room, listens to every participant separately, speaks back.

The session owns the room connection, one listener per remote participant, the shared voice
source and the persona that decides what to say. Everything it starts it also stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiortc.mediastreams import MediaStreamTrack
from pyee.asyncio import AsyncIOEventEmitter

from meetbot.config import BotConfig
from meetbot.events import Participant, SpeechStarted, Utterance
from meetbot.media.inbound import RECEIVE_BUFFER_FRAMES, ParticipantListener
from meetbot.media.outbound import VoiceSource
from meetbot.transport.room import RoomConnection
from meetbot.transport.signaling_client import parse_room_url

log = logging.getLogger(__name__)

_TICK_S = 0.05
"""How often silence timers are checked on the wall clock."""


class Persona(Protocol):
    """Decides what the bot does with what it hears."""

    async def on_utterance(self, utterance: Utterance) -> None: ...

    def on_speech_start(self, event: SpeechStarted) -> None: ...

    def on_pause(self, utterance: Utterance) -> None:
        """The speaker paused; ``utterance`` may turn out final (early work may start)."""
        ...

    def start(self) -> None: ...

    async def close(self) -> None: ...


class QuietPersona:
    """Hears everything and does nothing with it: the base of simple personas, and the
    listening-only bot the cost benchmark measures."""

    async def on_utterance(self, utterance: Utterance) -> None:
        pass

    def on_speech_start(self, event: SpeechStarted) -> None:
        pass

    def on_pause(self, utterance: Utterance) -> None:
        pass

    def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class EchoPersona(QuietPersona):
    """Replays every utterance into the call: proves the whole audio loop without a model."""

    def __init__(self, session: BotSession) -> None:
        self._voice = session.voice

    async def on_utterance(self, utterance: Utterance) -> None:
        self._voice.enqueue(utterance.pcm, utterance.sample_rate, tag=f"echo:{utterance.ended_at}")


class BotSession(AsyncIOEventEmitter):  # type: ignore[misc]
    """A bot in one room.

    Events: ``joined``, ``listening`` (a participant's audio arrived), ``speech_start``,
    ``utterance``, ``peer_left``, ``room_message``, ``left``.
    """

    def __init__(self, room_url: str, config: BotConfig) -> None:
        super().__init__()
        self.config = config
        self.address = parse_room_url(room_url)
        self.voice = VoiceSource()
        self.room = RoomConnection(
            self.address,
            config.name,
            "bot",
            make_track=lambda _peer: self.voice.new_track(),
            on_track=self._on_track,
            on_peer_left=self._on_peer_left,
            on_message=self._on_room_message,
            receive_buffer_frames=RECEIVE_BUFFER_FRAMES,
        )
        self.participant_listeners: dict[str, ParticipantListener] = {}
        self.persona: Persona = EchoPersona(self)
        self._utterances: asyncio.Queue[Utterance] = asyncio.Queue(maxsize=64)
        self._someone_speaking = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.notes_store: Any = None
        """The meeting notes store, when the persona keeps notes."""

    def add_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Something to run when the session stops, after the persona is closed."""
        self._closers.append(closer)

    def send_soon(self, message: dict[str, Any]) -> None:
        """Send a signaling message (caption, notes) without making the caller wait."""
        task = asyncio.get_running_loop().create_task(self.room.send(message))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    @property
    def people(self) -> list[Participant]:
        """Remote participants currently in the room."""
        return list(self.room.participants.values())

    async def start(self) -> None:
        self.voice.start()
        await self.room.join()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._tick(), name="bot-silence-ticker"),
            loop.create_task(self._consume(), name="bot-utterances"),
        ]
        self.persona.start()
        log.info("%s joined %s", self.config.name, self.address.page_url)
        self.emit("joined")

    async def stop(self) -> None:
        """Leave the room and release everything this session started."""
        for listener in list(self.participant_listeners.values()):
            await listener.stop()
        self.participant_listeners.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.persona.close()
        for closer in self._closers:
            try:
                await closer()
            except Exception:
                log.exception("error while closing the session")
        await self.room.leave()
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        await self.voice.stop()
        self.emit("left")

    async def wait_closed(self) -> None:
        await self.room.closed.wait()

    # ---- inbound ---------------------------------------------------------------------------

    def end_turn(self, participant_id: str, revision: int) -> bool:
        """End a participant's utterance now if nothing was said since ``revision`` (the
        persona read the speech so far as a finished sentence)."""
        listener = self.participant_listeners.get(participant_id)
        return listener is not None and listener.end_turn(revision, time.monotonic())

    def hold_turn(self, participant_id: str, revision: int) -> bool:
        """Give a participant longer to go on (the words so far leave the thought open)."""
        listener = self.participant_listeners.get(participant_id)
        hold_s = self.config.vad.hold_ms / 1000
        return listener is not None and listener.hold_turn(revision, hold_s)

    def _on_track(self, peer: Participant, track: MediaStreamTrack) -> None:
        old = self.participant_listeners.pop(peer.id, None)
        if old is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(old.stop()))
        listener = ParticipantListener(
            peer, track, self.config.vad, self._deliver, self._speech_started,
            lambda utterance: self.persona.on_pause(utterance),
        )
        self.participant_listeners[peer.id] = listener
        listener.start()
        log.info("listening to %s", peer.name)
        self.emit("listening", peer)

    async def _on_peer_left(self, peer: Participant) -> None:
        listener = self.participant_listeners.pop(peer.id, None)
        if listener is not None:
            await listener.stop()
        log.info("%s left", peer.name)
        self.emit("peer_left", peer)

    def _on_room_message(self, message: dict[str, Any]) -> None:
        self.emit("room_message", message)

    def _speech_started(self, event: SpeechStarted) -> None:
        self._someone_speaking.set()
        self.emit("speech_start", event)
        self.persona.on_speech_start(event)

    def _deliver(self, utterance: Utterance) -> None:
        log.info(
            "utterance from %s: %.2f s", utterance.participant_name, utterance.duration_s
        )
        self.emit("utterance", utterance)
        try:
            self._utterances.put_nowait(utterance)
        except asyncio.QueueFull:
            log.warning("utterance queue full; dropped one from %s", utterance.participant_name)

    async def _consume(self) -> None:
        while True:
            utterance = await self._utterances.get()
            try:
                await self.persona.on_utterance(utterance)
            except Exception:
                log.exception("persona failed on an utterance; the meeting goes on")

    async def _tick(self) -> None:
        """Ends utterances on the wall clock while someone speaks; asleep while nobody does, so
        a quiet meeting costs nothing here."""
        while True:
            if not any(lis.speaking for lis in self.participant_listeners.values()):
                self._someone_speaking.clear()
                await self._someone_speaking.wait()
            await asyncio.sleep(_TICK_S)
            now = time.monotonic()
            for listener in list(self.participant_listeners.values()):
                listener.tick(now)
