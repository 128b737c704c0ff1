"""The cascaded speech loop: utterance -> text -> brain -> streamed speech, with barge-in.

One ``Conversation`` per bot session. It transcribes every utterance (per speaker), lets the
brain see every turn (for notes) but speaks only when addressed or to keep time, streams the
reply sentence by sentence so the first words go out before the rest is synthesized, stops the
moment someone talks over it, and records what it actually said and how long each stage took.

A turn can end too early: "Assistant, the agenda is the roadmap review." reads as finished at
the pause, the bot begins to answer, and the speaker goes on ("The budget request and
hiring."). The bot stops, as for any barge-in, and takes both parts as one utterance, as a
person would: the brain gets one turn with the whole text that ``amends`` the first part, and
never the continuation alone (see ``MEND_WINDOW_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from meetbot.addressing import Addressing
from meetbot.brain.base import Brain
from meetbot.events import SpeechStarted, Turn, TurnTiming, Utterance
from meetbot.media.outbound import OUT_RATE, VoiceSource
from meetbot.metrics import LatencyLog
from meetbot.speech.base import SpeechError, SpeechToText, TextToSpeech, Transcript
from meetbot.turn_end import TurnEnd, is_reaction, judge_turn_end

log = logging.getLogger(__name__)

TranscriptSink = Callable[[str, str, bool], None]
"""(speaker name, text, is_bot) for every line heard or said."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ENDS_SENTENCE = re.compile(r"[.!?]\s*$")
_FIRST_CHUNK_MIN_WORDS = 3
_PAUSE_BEFORE_PROACTIVE_S = 0.8
"""The bot speaks on its own only after the room has been quiet this long."""
MEND_WINDOW_S = 2.0
"""Speech by the person the bot is answering that starts at most this long after the answer
became audible (or at any time before it did) continues their turn, and the turn is mended.

Why 2 s: the bot is audible about 0.4 s after a turn ends, so this allows a pause of up to
about 2.4 s, more than the pauses people make inside a turn (mostly under a second; meetbot
holds a turn left open, "... and", for 1.5 s). And 2 s of the bot is its stock
acknowledgement ("Great!", about half a second, ready in advance) and a few words more:
whoever speaks by then has not heard the answer and is not replying to it; they are still
talking. Later, they have heard a good part of it, and what they say is a new turn (a
barge-in, answered on its own). An answer heard to its end before the speaker goes on
(a short one) leaves nothing to mend either: the speaker heard it out."""


async def sentences(fragments: AsyncIterator[str]) -> AsyncIterator[str]:
    """Regroup streamed text into sentences; the first may be cut at a comma to start sooner.

    A fragment that ends a sentence ends it even without a following space, so a brain that
    yields whole sentences ("Hello." "How are you?") and a model streaming tokens both work.
    """
    buf = ""
    first = True
    async for fragment in fragments:
        buf += fragment
        while True:
            parts = _SENTENCE_END.split(buf, maxsplit=1)
            if len(parts) == 2:
                done, buf = parts
                if done.strip():
                    yield done.strip()
                    first = False
                continue
            if first:
                head, sep, rest = buf.partition(", ")
                if sep and len(head.split()) >= _FIRST_CHUNK_MIN_WORDS and rest:
                    yield head.strip() + ","
                    buf = rest
                    first = False
                    continue
            if _ENDS_SENTENCE.search(buf):
                yield buf.strip()
                buf = ""
                first = False
                break
            break
    if buf.strip():
        yield buf.strip()


def _consume_exception(task: asyncio.Task[Transcript]) -> None:
    """Early transcriptions may fail or be discarded; their errors surface when awaited."""
    if not task.cancelled():
        task.exception()


@dataclass
class _Answering:
    """The turn the bot last began to answer, kept to tell its speaker going on with it (the
    turn is mended) from that speaker's next turn."""

    turn: Turn
    audible_at: float | None = None
    """When the answer's first audio went out; None while none has (or if none ever did)."""
    ended_at: float | None = None
    """When the answer ended, played out or cut off; None while it goes on."""

    def end(self, at: float, audible_at: float | None) -> None:
        """The answer stopped at ``at`` (the first call says when; a barge-in calls at once,
        the reply task again as it finishes)."""
        if self.ended_at is None:
            self.ended_at = at
            self.audible_at = audible_at

    def continued_by(self, speaker_id: str, started_at: float) -> bool:
        """Whether speech by ``speaker_id`` from ``started_at`` goes on with this turn."""
        if speaker_id != self.turn.speaker_id or started_at <= self.turn.ended_at:
            return False
        if self.ended_at is not None and started_at >= self.ended_at:
            return False  # the answer was heard to its end first: this is a new turn
        return self.audible_at is None or started_at <= self.audible_at + MEND_WINDOW_S


@dataclass
class _Reply:
    """A reply being spoken: its pieces and how many samples each took."""

    tag: str
    to_speaker: str | None
    pieces: list[tuple[str, int]] = field(default_factory=list)
    interrupted: bool = False
    answering: _Answering | None = None
    """The turn this answers (None: the bot speaks on its own)."""

    def heard_text(self, played_samples: int) -> str:
        """What listeners actually heard, cut where playback stopped."""
        out: list[str] = []
        pos = 0
        for text, samples in self.pieces:
            if pos + samples <= played_samples:
                out.append(text)
            elif played_samples > pos:
                words = text.split()
                keep = max(1, int(len(words) * (played_samples - pos) / max(samples, 1)))
                out.append(" ".join(words[:keep]) + "…")
                break
            pos += samples
        return " ".join(out)

    @property
    def full_text(self) -> str:
        return " ".join(t for t, _ in self.pieces)


class Conversation:
    """The ``assistant`` persona: speech-to-text, addressing, brain, text-to-speech."""

    def __init__(
        self,
        voice: VoiceSource,
        stt: SpeechToText,
        tts: TextToSpeech,
        brain: Brain,
        addressing: Addressing,
        people_in_call: Callable[[], int],
        someone_speaking: Callable[[], bool],
        latency: LatencyLog | None = None,
        on_line: TranscriptSink | None = None,
        bot_name: str = "assistant",
        on_speaking: Callable[[bool], None] | None = None,
        on_reply_progress: Callable[[str], None] | None = None,
        end_turn: Callable[[str, int], bool] | None = None,
        hold_turn: Callable[[str, int], bool] | None = None,
        hold_s: float = 1.5,
        prepare_phrases: list[str] | None = None,
    ) -> None:
        self._voice = voice
        self._stt = stt
        self._tts = tts
        self._brain = brain
        self._addressing = addressing
        self._people_in_call = people_in_call
        self._someone_speaking = someone_speaking
        self.latency = latency or LatencyLog()
        self._on_line = on_line
        self._on_speaking = on_speaking
        self._on_reply_progress = on_reply_progress
        """Gets the reply text so far as each sentence goes out (live captions)."""
        self._bot_name = bot_name
        self._end_turn = end_turn
        """Ends a participant's utterance early (participant id, revision); None: never."""
        self._hold_turn = hold_turn
        """Gives a participant longer to finish (participant id, revision); None: never."""
        self._hold_s = hold_s
        self._held: dict[str, tuple[Utterance, str, asyncio.Task[None]]] = {}
        """Per participant: an utterance that ended mid-thought, waiting for the rest."""
        self._prepare_phrases = prepare_phrases or []
        """The brain's stock sentences: synthesized ahead if the speech engine can keep them."""
        self._preparing: asyncio.Task[None] | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._current: _Reply | None = None
        self._turns = 0
        self._last_speech_end = time.monotonic()
        self._ticker: asyncio.Task[None] | None = None
        self._early: dict[str, tuple[Utterance, asyncio.Task[Transcript]]] = {}
        """Per participant: a transcription started at a pause, used if the pause was the end."""
        self._calls: dict[str, tuple[float, str]] = {}
        """Per participant: the start of the utterance whose transcription at a pause opened
        with a call to the bot, and that call ("Hey assistant")."""
        self.interruptions: list[tuple[float, str]] = []
        """(monotonic time, heard text) of every barge-in."""
        self._speech_starts: dict[str, float] = {}
        """Per participant: when they last began to speak (VAD onset)."""
        self._answering: _Answering | None = None
        """The turn the bot last began to answer: its speaker may go on with it."""

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ticker = loop.create_task(self._keep_time(), name="timekeeper")
        prepare = getattr(self._tts, "prepare", None)
        if prepare is not None and self._prepare_phrases:
            self._preparing = loop.create_task(
                prepare(self._prepare_phrases), name="tts-prepare"
            )

    async def close(self) -> None:
        for _, early in self._early.values():
            early.cancel()
        self._early.clear()
        held, self._held = self._held, {}
        for utterance, text, expiry in held.values():
            expiry.cancel()
            await self._take_turn(utterance, text, TurnTiming(utterance.participant_name,
                                                              speech_end=utterance.ended_at))
        for task in (self._ticker, self._reply_task, self._preparing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._ticker = self._reply_task = self._preparing = None

    @property
    def speaking(self) -> bool:
        return self._reply_task is not None and not self._reply_task.done()

    # ---- hearing ---------------------------------------------------------------------------

    def on_speech_start(self, event: SpeechStarted) -> None:
        """Barge-in: someone talks while the bot speaks -> stop now, remember what was heard.

        The person the bot is answering going on at once is a barge-in too: their turn ended
        too early, and their next utterance is taken with it (``_take_turn``)."""
        self._speech_starts[event.participant_id] = event.at
        # A reply in progress counts even while its next sentence is still being synthesized
        # and nothing is queued: it would start playing over the person otherwise.
        if self._current is None:
            return
        reply = self._current
        if reply.answering is not None:
            # Now, not when the reply task gets round to it: the speaker's next utterance
            # may be judged (continuation or not) before then.
            reply.answering.end(time.monotonic(), self._voice.first_sent_at(reply.tag))
        self._voice.flush()
        reply.interrupted = True
        log.info("%s interrupted the bot; stopped speaking", event.participant_name)
        if self._reply_task is not None:
            self._reply_task.cancel()

    def on_pause(self, utterance: Utterance) -> None:
        """Start transcribing at a pause; the end hangover often confirms it was the end."""
        old = self._early.pop(utterance.participant_id, None)
        if old is not None:
            old[1].cancel()
        task = asyncio.get_running_loop().create_task(
            self._stt.transcribe(utterance.pcm), name=f"stt-early:{utterance.participant_name}"
        )
        task.add_done_callback(_consume_exception)
        task.add_done_callback(lambda done: self._maybe_end_turn(utterance, done))
        self._early[utterance.participant_id] = (utterance, task)

    def _maybe_end_turn(self, draft: Utterance, task: asyncio.Task[Transcript]) -> None:
        """The transcription started at a pause is in. If it reads as a finished sentence
        meant for the bot, end the turn now instead of waiting out the whole hangover; if it
        leaves the thought open ("Assistant,"), give the speaker longer to go on."""
        if task.cancelled() or task.exception() is not None:
            return
        text = task.result().text
        call = self._addressing.leading_call(text)
        known = self._calls.get(draft.participant_id)
        if call is not None and (known is None or known[0] != draft.started_at):
            self._calls[draft.participant_id] = (draft.started_at, call)
        current = self._early.get(draft.participant_id)
        if current is None or current[1] is not task:
            return
        verdict = judge_turn_end(text, (self._bot_name,))
        if verdict is TurnEnd.CONTINUES and self._hold_turn is not None:
            self._hold_turn(draft.participant_id, draft.revision)
            return
        if verdict is not TurnEnd.COMPLETE or self._end_turn is None:
            return
        if not self._addressing.would_address(
            draft.participant_id, text, self._people_in_call(), draft.started_at
        ) and self._continued(draft, text) is None:
            return
        if self._end_turn(draft.participant_id, draft.revision):
            log.debug("%s's turn ended at the pause: %r", draft.participant_name, text)

    async def _transcribe(self, utterance: Utterance) -> Transcript:
        early = self._early.pop(utterance.participant_id, None)
        if early is not None:
            draft, task = early
            if draft.started_at == utterance.started_at and draft.revision == utterance.revision:
                log.debug("using the transcription started at the pause (%s)", task.done())
                return await task
            log.debug("speech went on after the pause; transcribing again")
            task.cancel()
        return await self._stt.transcribe(utterance.pcm)

    async def on_utterance(self, utterance: Utterance) -> None:
        self._last_speech_end = max(self._last_speech_end, utterance.ended_at)
        timing = TurnTiming(utterance.participant_name, speech_end=utterance.ended_at)
        timing.extra["endpointing"] = utterance.detected_at - utterance.ended_at
        try:
            transcript = await self._transcribe(utterance)
        except SpeechError as exc:
            log.error("speech-to-text failed for %s's utterance: %s — the meeting goes on",
                      utterance.participant_name, exc)
            return
        timing.transcript_ready = time.monotonic()
        text = self._with_call_heard_early(utterance, transcript.text.strip())
        if not text:
            return
        held = self._held.pop(utterance.participant_id, None)
        if held is not None:
            held_utterance, held_text, expiry = held
            expiry.cancel()
            # The thought "Assistant," left open goes on here: one turn, from its start.
            text = f"{held_text} {text}"
            utterance = dataclasses.replace(utterance, started_at=held_utterance.started_at)
        elif self._hold_turn is not None and judge_turn_end(
            text, (self._bot_name,)
        ) is TurnEnd.CONTINUES:
            self._hold(utterance, text, timing)
            return
        await self._take_turn(utterance, text, timing)

    def _with_call_heard_early(self, utterance: Utterance, text: str) -> str:
        """Put back a call to the bot that a transcription at a pause heard and the whole
        utterance's lost. Whisper tiny.en now and then drops an utterance's opening words
        ("Hey assistant, can you help ..." -> "Can you help ..."), and the turn would go
        unanswered; transcribed alone at the pause after it, the call is heard reliably."""
        early = self._calls.pop(utterance.participant_id, None)
        if early is None or early[0] != utterance.started_at or not text:
            return text
        if self._addressing.mentions_bot(text):
            return text
        log.debug("%s: the call %r heard at a pause was lost; put back",
                  utterance.participant_name, early[1])
        return f"{early[1]}, {text}"

    def _hold(self, utterance: Utterance, text: str, timing: TurnTiming) -> None:
        """Words that leave the thought open ended by silence ("Assistant," then a long
        think): keep them for the speaker's next utterance, or take them alone if none comes
        within the hold time."""

        async def expire() -> None:
            await asyncio.sleep(max(0.0, self._hold_s - (time.monotonic() - utterance.ended_at)))
            if self._held.get(utterance.participant_id, (None,))[0] is utterance:
                del self._held[utterance.participant_id]
                await self._take_turn(utterance, text, timing)

        task = asyncio.get_running_loop().create_task(expire(), name="held-turn")
        self._held[utterance.participant_id] = (utterance, text, task)

    def _continued(self, utterance: Utterance, text: str) -> Turn | None:
        """The turn that ``utterance`` (which says ``text``) goes on with, if its speaker went
        on just as the bot began to answer it (see ``MEND_WINDOW_S``); None for a turn of its
        own. Words said back to an answer the speaker heard begin do not go on with the turn:
        a new call ("Assistant, wait.") or a reaction ("Stop." / "Thanks.")."""
        answering = self._answering
        if answering is None or not answering.continued_by(
            utterance.participant_id, utterance.started_at
        ):
            return None
        heard = answering.audible_at is not None and answering.audible_at < utterance.started_at
        if heard and (
            self._addressing.leading_call(text) is not None
            or is_reaction(text, (self._bot_name,))
        ):
            return None
        return answering.turn

    def _went_on(self, speaker_id: str, since: float) -> bool:
        """Whether ``speaker_id`` began to speak again after ``since`` (their turn's end)."""
        return self._speech_starts.get(speaker_id, since) > since

    async def _take_turn(self, utterance: Utterance, text: str, timing: TurnTiming) -> None:
        first = self._continued(utterance, text)
        line = text
        if first is not None:
            # One utterance, as the speaker meant it: the brain gets the whole of it, and the
            # caption only the new words (the first part's line is out already; holding every
            # line back until no continuation can come would delay all captions by seconds).
            text = f"{first.text} {text}"
            utterance = dataclasses.replace(utterance, started_at=first.started_at)
        timing.text = text
        # A follow-up counts if it *began* inside the window, however long it then took.
        addressed = self._addressing.decide(
            utterance.participant_id, text, self._people_in_call(), utterance.started_at
        ) or first is not None
        log.info("%s%s%s: %s", utterance.participant_name, " (to bot)" if addressed else "",
                 " (goes on)" if first is not None else "", text)
        if self._on_line is not None:
            self._on_line(utterance.participant_name, line, False)
        turn = Turn(
            speaker_id=utterance.participant_id,
            speaker_name=utterance.participant_name,
            text=text,
            addressed=addressed,
            started_at=utterance.started_at,
            ended_at=utterance.ended_at,
            wall_time=time.time() - (time.monotonic() - utterance.ended_at),
            amends=first,
        )
        if not addressed:
            await self._listen_only(turn)
            return
        await self._stop_reply()
        answering = _Answering(turn)
        self._answering = answering
        task = asyncio.get_running_loop().create_task(
            self._reply(turn, timing, answering), name=f"reply:{self._turns}"
        )
        # Also for a reply cancelled before it began (it never reaches ``_finish``).
        task.add_done_callback(lambda _: answering.end(time.monotonic(), None))
        self._reply_task = task

    async def _listen_only(self, turn: Turn) -> None:
        """The brain takes notes from a turn not meant for the bot; nothing is said."""
        async for _ in self._brain.reply(turn):
            log.warning("brain produced a reply to an unaddressed turn; not spoken")

    # ---- speaking --------------------------------------------------------------------------

    async def say(self, text: str) -> None:
        """Speak on the bot's own initiative (e.g. a timebox reminder)."""
        await self._stop_reply()

        async def one() -> AsyncIterator[str]:
            yield text

        timing = TurnTiming(self._bot_name, speech_end=time.monotonic())
        self._reply_task = asyncio.get_running_loop().create_task(
            self._speak(one(), None, timing, record_latency=False), name="say"
        )

    async def _reply(self, turn: Turn, timing: TurnTiming, answering: _Answering) -> None:
        await self._speak(self._brain.reply(turn), turn.speaker_id, timing, record_latency=True,
                          answering=answering)

    async def _speak(self, fragments: AsyncIterator[str], to_speaker: str | None,
                     timing: TurnTiming, record_latency: bool,
                     answering: _Answering | None = None) -> None:
        """Say ``fragments``, sentence by sentence. Answering a turn, stop before the next
        sentence if its speaker went on since it ended: the barge-in that the answer would
        have met had it already been playing when they did."""
        self._turns += 1
        reply = _Reply(tag=f"turn{self._turns}", to_speaker=to_speaker, answering=answering)
        self._current = reply
        if self._on_speaking is not None:
            self._on_speaking(True)
        try:
            async for sentence in sentences(fragments):
                if answering is not None and self._went_on(
                    answering.turn.speaker_id, answering.turn.ended_at
                ):
                    reply.interrupted = True
                    log.info("the speaker went on before the bot answered; not answering")
                    break
                if timing.first_reply_text is None:
                    timing.first_reply_text = time.monotonic()
                samples = 0
                try:
                    async for chunk in self._tts.synthesize(sentence):
                        if timing.first_audio_synth is None:
                            timing.first_audio_synth = time.monotonic()
                        self._voice.enqueue(chunk, self._tts.sample_rate, tag=reply.tag)
                        samples += len(chunk) * OUT_RATE // self._tts.sample_rate
                except SpeechError as exc:
                    log.error("text-to-speech failed: %s — the meeting goes on", exc)
                    break
                reply.pieces.append((sentence, samples))
                if self._on_reply_progress is not None:
                    self._on_reply_progress(reply.full_text)
            await self._wait_played(reply)
        except asyncio.CancelledError:
            reply.interrupted = True
            raise
        finally:
            self._finish(reply, timing, record_latency)

    async def _wait_played(self, reply: _Reply) -> None:
        await self._voice.wait_played(reply.tag)

    def _finish(self, reply: _Reply, timing: TurnTiming, record_latency: bool) -> None:
        timing.first_audio_sent = self._voice.first_sent_at(reply.tag)
        if reply.answering is not None:
            reply.answering.end(time.monotonic(), timing.first_audio_sent)
        played = self._voice.finish_tag(reply.tag).played_samples
        said = reply.heard_text(played) if reply.interrupted else reply.full_text
        if self._current is reply:
            self._current = None
            if self._on_speaking is not None:
                self._on_speaking(False)
        if not reply.pieces:
            return
        timing.reply = said
        if reply.interrupted:
            self.interruptions.append((time.monotonic(), said))
        if said and self._on_line is not None:
            self._on_line(self._bot_name, said, True)
        self._addressing.bot_replied(reply.to_speaker, said, time.monotonic())
        if record_latency:
            self.latency.record(timing)

    async def _stop_reply(self) -> None:
        task = self._reply_task
        if task is not None and not task.done():
            self._voice.flush()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._reply_task = None

    # ---- timekeeping -----------------------------------------------------------------------

    async def _keep_time(self) -> None:
        """Give the brain a chance to speak up, but only into a pause."""
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if (
                self.speaking
                or self._someone_speaking()
                or now - self._last_speech_end < _PAUSE_BEFORE_PROACTIVE_S
            ):
                continue
            try:
                text = await self._brain.proactive(now)
            except Exception:
                log.exception("brain failed while keeping time")
                continue
            if text:
                await self.say(text)
