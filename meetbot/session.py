"""Wires a bot session together from the configuration: persona, speech engines, brain, notes.

This is the composition root: the only module that knows which concrete engine goes where.
Models are loaded once per process (the engines share them) before the bot joins, so the first
turn does not pay for loading.
"""

from __future__ import annotations

import asyncio
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from meetbot.addressing import Addressing
from meetbot.bot import BotSession
from meetbot.config import BotConfig
from meetbot.conversation import Conversation
from meetbot.events import PCM16, Participant
from meetbot.language.intents import shared_classifier
from meetbot.language.reader import Reader
from meetbot.metrics import LatencyLog
from meetbot.scenario import Voice
from meetbot.speech.base import SpeechError, SpeechToText, TextToSpeech

log = logging.getLogger(__name__)

_NOTES_PUSH_DELAY_S = 0.1
"""Changes within this window go to the room page as one ``notes`` message."""


def default_scenario_path() -> Path:
    """The seed meeting shipped with the package (the worked example)."""
    return Path(str(resources.files("meetbot") / "scenarios" / "seed-meeting.json"))


async def create_bot(room_url: str, config: BotConfig) -> BotSession:
    """A bot for ``room_url`` with the configured persona, ready to ``start()``."""
    bot = BotSession(room_url, config)
    if config.persona == "echo":
        return bot
    stt, tts = _speech_engines(config)
    # The intent classifier trains once per process (about a second): not on the event loop.
    await asyncio.to_thread(shared_classifier)
    for engine, what in ((stt, "speech-to-text"), (tts, "text-to-speech")):
        load = getattr(engine, "load", None)
        if load is None:
            continue
        try:
            await load()
        except SpeechError as exc:
            # The bot still joins: it keeps notes of what it can and says why it cannot hear
            # or speak in the log, rather than leaving the meeting without an assistant.
            log.error("%s engine failed to load: %s — continuing without it", what, exc)
    _attach_assistant(bot, config, stt, tts)
    if config.pipeline == "speech-to-speech":
        # The cascade just built stays ready: it takes over if the Realtime session is gone.
        from meetbot.realtime.persona import attach_realtime

        attach_realtime(bot, config, fallback=bot.persona if config.realtime.fallback else None)
    elif config.pipeline != "cascade":
        raise ValueError(f"unknown pipeline {config.pipeline!r} (cascade or speech-to-speech)")
    return bot


def _speech_engines(config: BotConfig) -> tuple[SpeechToText, TextToSpeech]:
    from meetbot.speech.factory import build_stt, build_voice_of_bot

    return build_stt(config.speech), build_voice_of_bot(config.speech)


def _attach_assistant(
    bot: BotSession, config: BotConfig, stt: SpeechToText, tts: TextToSpeech
) -> None:
    from meetbot.brain.rules import RuleBrain
    from meetbot.meeting.store import NotesStore

    store = NotesStore.for_room(config.data_dir, bot.address.room, title=bot.address.room)
    wake = config.wake_phrases or (f"hey {config.name}", f"ok {config.name}")
    reader = Reader(config.name, wake_phrases=wake)
    brain = RuleBrain(store, config.name, record_own_replies=False, reader=reader)
    brain_impl = _maybe_llm_brain(config, store, brain)
    if brain_impl is not brain:  # the LLM brain's background notes are written before closing
        bot.add_closer(brain_impl.close)
    publisher = _NotesPublisher(bot, store)

    def on_line(speaker: str, text: str, is_bot: bool) -> None:
        if is_bot:  # people's lines are recorded by the brain, which sees every turn
            store.notes.add_transcript_line(speaker, text, is_bot=True)
        bot.send_soon({"type": "caption", "text": text, "final": True, "speaker": speaker})

    conversation = Conversation(
        bot.voice,
        stt,
        tts,
        brain_impl,
        Addressing(config.name, wake, config.follow_up_s,
                   reader=reader),
        people_in_call=lambda: sum(1 for p in bot.people if p.kind != "bot"),
        someone_speaking=lambda: any(lis.speaking for lis in bot.participant_listeners.values()),
        latency=LatencyLog(config.latency_log),
        on_line=on_line,
        bot_name=config.name,
        on_speaking=lambda speaking: bot.send_soon({"type": "speaking", "speaking": speaking}),
        on_reply_progress=lambda text: bot.send_soon(
            {"type": "caption", "text": text, "final": False, "speaker": config.name}
        ),
        end_turn=bot.end_turn if config.vad.early_end else None,
        hold_turn=bot.hold_turn if config.vad.early_end else None,
        hold_s=config.vad.hold_ms / 1000,
        prepare_phrases=brain.stock_phrases(),
    )

    vocabulary = _MeetingVocabulary(stt, config.name, bot, store)

    def on_track(peer: Participant) -> None:
        brain_impl.add_participant(peer.name)
        vocabulary.refresh()

    def on_change(_change: Any) -> None:
        publisher.changed()
        vocabulary.refresh()

    bot.on("listening", on_track)
    bot.on("joined", publisher.push_now)
    bot.on("joined", vocabulary.refresh)
    store.subscribe(on_change)
    bot.persona = conversation
    bot.add_closer(publisher.close)
    bot.add_closer(_closing(store))
    bot.notes_store = store


def _maybe_llm_brain(config: BotConfig, store: Any, rules: Any) -> Any:
    if config.brain.kind != "llm":
        return rules
    try:
        from meetbot.brain.llm import LLMBrain
    except ImportError:
        log.error("the LLM brain is not available in this install; using the rule brain")
        return rules
    # MEETBOT_LLM_PROTOCOL=json: schema-constrained JSON instead of tool calls, for small
    # local models and servers without tool calling (see meetbot/brain/llm.py).
    protocol = os.environ.get("MEETBOT_LLM_PROTOCOL", "tools")
    return LLMBrain(config.brain, store, fallback=rules, bot_name=config.name, protocol=protocol)


def _closing(store: Any) -> Any:
    async def close() -> None:
        store.close()

    return close


class _MeetingVocabulary:
    """Keeps the recognizer's vocabulary in step with the meeting: the bot's name, everyone
    who has been in the room, and the agenda's titles.

    Whisper tiny.en turns names it has no reason to expect into common words ("Priya" ->
    "pre-eat", "Siobhan" -> "Chiron", "Juno, what..." -> "Do you know what..."), and a missed
    bot name is an unanswered turn. Given the meeting's words as previous text, it spelled
    them right 442 times of 486 instead of 195, and the word error rate went from 26 % to
    10 %, on 40 meeting lines in nine voices (``benchmarks/stt.py``), for about 5 % more
    decoding time. The vocabulary is rebuilt when someone joins and when the notes change
    (cheap: a few strings, and the engine is only told when the words differ). People who
    left stay in it: they are still talked about. Weekdays are left out (see
    ``meetbot.speech.vocabulary.WEEKDAYS``).
    """

    def __init__(self, stt: SpeechToText, bot_name: str, bot: BotSession, store: Any) -> None:
        self._stt = stt
        self._bot_name = bot_name
        self._bot = bot
        self._store = store
        self._people: dict[str, None] = {}
        """Everyone seen in the room, in order of arrival (a dict as an ordered set)."""
        self._words: tuple[str, ...] | None = None

    def refresh(self) -> None:
        """Rebuild the words from the room and the notes; tell the engine if they changed."""
        from meetbot.speech.vocabulary import meeting_vocabulary

        for peer in self._bot.people:
            self._people.setdefault(peer.name, None)
        agenda = [item.title for item in self._store.notes.agenda]
        words = tuple(meeting_vocabulary(self._bot_name, self._people, agenda))
        if words != self._words:
            self._words = words
            try:
                self._stt.set_vocabulary(words)
            except Exception:  # a hint that fails must not cost the meeting its notes
                log.exception("could not set the speech-to-text vocabulary")


class _NotesPublisher:
    """Pushes the live notes to the room (page and notes endpoint), coalescing bursts."""

    def __init__(self, bot: BotSession, store: Any) -> None:
        self._bot = bot
        self._store = store
        self._pending: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(_NOTES_PUSH_DELAY_S, self.push_now)

    def push_now(self) -> None:
        self._pending = None
        notes = self._store.notes.to_dict(transcript_limit=50)
        self._bot.send_soon({"type": "notes", "notes": notes})

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        # One last, awaited push so the room keeps the final state after the bot leaves.
        await self._bot.room.send(
            {"type": "notes", "notes": self._store.notes.to_dict(transcript_limit=50)}
        )


# ---- what simulated participants use ---------------------------------------------------------


def scenario_voices() -> Any:
    """A renderer for scenario voices: the bundled Piper voice (at a pace), espeak-ng or
    flite."""
    from meetbot.runner import render_espeak, render_flite
    from meetbot.speech.local_tts import PiperTTS

    voices: dict[str, PiperTTS] = {}

    async def render(voice: Voice, text: str) -> tuple[PCM16, int]:
        if voice.engine == "espeak":
            return await render_espeak(voice.option, text)
        if voice.engine == "flite":
            return await render_flite(voice.option, text)
        tts = voices.get(voice.option)
        if tts is None:
            tts = PiperTTS(length_scale=float(voice.option) if voice.option else None)
            voices[voice.option] = tts
        chunks = [c async for c in tts.synthesize(text)]
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        # A short lead-in of silence, as a person draws breath before talking.
        lead = np.zeros(int(0.2 * tts.sample_rate), np.int16)
        return np.concatenate((lead, pcm)), tts.sample_rate

    return render


def scenario_ears() -> SpeechToText:
    """How simulated participants transcribe what the bot says: the local Whisper model."""
    from meetbot.speech.local_stt import WhisperSTT

    return WhisperSTT()


def notes_markdown(notes: dict[str, Any]) -> str:
    from meetbot.meeting.export import to_markdown
    from meetbot.meeting.notes import MeetingNotes

    return to_markdown(MeetingNotes.from_dict(notes))

