"""The default brain: offline, rule-based, fast, and the one every meeting can count on.

It hears every turn: each goes into the transcript, and action items, decisions and notes are
taken from it whether or not the bot was addressed. It speaks only when addressed (or to keep
time), in short sentences that confirm what it wrote down. It remembers the one question it last
asked ("Should we start with the budget?") so that a bare "yes" can be acted on.

Every change goes through the notes' ops on the store it was given, so it is persisted and
pushed like any other brain's.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Literal

from meetbot.brain import phrases
from meetbot.brain.agenda_parse import agenda_list, extract_agenda, extract_timebox
from meetbot.brain.extract import Speaking, extract_action_items, extract_decision, extract_note
from meetbot.brain.intents import Intent, parse_intent
from meetbot.events import Turn
from meetbot.language.calling import BotName, Call
from meetbot.language.names import NameBook
from meetbot.language.text import join_words, normalize, sentences
from meetbot.meeting.notes import AgendaItem, MeetingNotes, NoteChange, NotesError, NotesHolder
from meetbot.meeting.timekeeper import Timekeeper, TimekeeperConfig

QuestionKind = Literal["agenda", "start", "which", "move", "wrap"]


@dataclass(frozen=True)
class _Question:
    kind: QuestionKind
    item_id: str | None
    asked_at: float


class RuleBrain:
    """Implements :class:`meetbot.brain.base.Brain` with rules and the meeting notes."""

    def __init__(
        self,
        store: NotesHolder,
        bot_name: str = "assistant",
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        timekeeper: Timekeeper | None = None,
        timekeeper_config: TimekeeperConfig | None = None,
        participants: Iterable[str] = (),
        tz: tzinfo | None = None,
        record_own_replies: bool = True,
        question_ttl_s: float = 60.0,
    ) -> None:
        """``store`` owns the notes (a :class:`~meetbot.meeting.store.NotesStore` persists
        them); ``clock`` is monotonic (timeboxes), ``wall_clock`` unix time (notes); ``tz`` is
        the meeting's time zone for due dates (local when None). With ``record_own_replies``
        the brain adds its replies to the transcript (what it yielded, even if cut off)."""
        self._store = store
        self.bot_name = bot_name
        self._bot = BotName(bot_name)
        self._clock = clock
        self._wall_clock = wall_clock
        self._tz = tz
        self._record_own = record_own_replies
        self._question_ttl_s = question_ttl_s
        self.names = NameBook(participants, exclude=[bot_name])
        for line in store.notes.transcript:
            if not line.is_bot:
                self.names.add(line.speaker)
        self.timekeeper = timekeeper or Timekeeper(
            store.notes, timekeeper_config, clock=clock, wall_clock=wall_clock
        )
        self._question: _Question | None = None
        self._taken: dict[tuple[str, float], _Taken] = {}
        """What the last few turns put down, so a turn that is mended can be taken back."""

    @property
    def notes(self) -> MeetingNotes:
        return self._store.notes

    def stock_phrases(self) -> list[str]:
        """The fixed sentences this brain says (the speech engine prepares them ahead)."""
        return phrases.stock()

    def add_participant(self, name: str) -> None:
        """Make a participant known before they speak (names are matched against these)."""
        self.names.add(name)

    # ----------------------------------------------------------------------------- Brain API

    async def reply(self, turn: Turn) -> AsyncGenerator[str, None]:
        """Yield the reply sentence by sentence (nothing when not addressed)."""
        said: list[str] = []
        try:
            for sentence in self.handle(turn):
                said.append(sentence)
                yield sentence
        finally:
            self._record_bot(said)

    async def proactive(self, now: float) -> str | None:
        """A timekeeping cue due at monotonic ``now``; call it only when nobody is talking.

        Returning the sentence marks it spoken. A cue that proposes the next item is remembered
        as a question, so "yes" afterwards moves on.
        """
        cue = self.timekeeper.due_cue(now)
        if cue is None:
            return None
        self.timekeeper.mark_spoken(cue)
        if cue.next_item_id is not None:
            self._question = _Question("move", cue.next_item_id, self._clock())
        else:
            self._question = _Question("wrap", None, self._clock())
        self._record_bot([cue.text])
        return cue.text

    # ----------------------------------------------------------------------------- turns

    def handle(self, turn: Turn) -> list[str]:
        """Record the turn, take notes from it, and return the reply sentences (maybe none).

        The synchronous core of :meth:`reply`; unlike ``reply`` it does not add the bot's own
        answer to the transcript."""
        raw = turn.text.strip()
        if not raw:
            return []
        if turn.speaker_name and turn.speaker_name != self.bot_name:
            self.names.add(turn.speaker_name)
        taken = self._taken.pop(_turn_key(turn.amends), None) if turn.amends else None
        if taken is not None:
            # The speaker went on: the first part was not the whole thought. What it alone put
            # down is taken back, and its transcript line becomes the whole utterance.
            for entry_id in taken.entries:
                with contextlib.suppress(NotesError):
                    self.notes.withdraw(entry_id)
            self.notes.amend_transcript_line(taken.line, raw)
        else:
            self.notes.add_transcript_line(turn.speaker_name, raw, turn.wall_time)
        record = _Taken(len(self.notes.transcript) - 1 if taken is None else taken.line, [])
        self._taken = {**dict(list(self._taken.items())[-7:]), _turn_key(turn): record}
        unsubscribe = self.notes.subscribe(lambda change: _collect(change, record.entries))
        try:
            return self._handle(turn, raw)
        finally:
            unsubscribe()

    def _handle(self, turn: Turn, raw: str) -> list[str]:
        addressed = self._bot.read(normalize(raw))
        ctx = Speaking(turn.speaker_name, self.names, turn.wall_time, self._tz,
                       addressed_to_bot=turn.addressed, utterance=raw)
        if not turn.addressed:
            self._listen(addressed.body, ctx)
            return []
        return self._respond(addressed, ctx)

    def _listen(self, body: str, ctx: Speaking) -> None:
        """Unaddressed: take notes silently; follow explicit agenda moves."""
        intent = parse_intent(body)
        if intent.next and self.notes.agenda:
            self._try(lambda: self.notes.next_item(ctx.wall_time))
        elif intent.start_ref and (item := self.notes.find_item(intent.start_ref)):
            self._try(lambda: self.notes.start_item(item.id, ctx.wall_time))
        tb = extract_timebox(body)
        if tb is not None and tb.strong and not tb.extra and self.notes.active_item():
            seconds = tb.seconds
            self._try(lambda: self.notes.set_timebox(seconds))
        if any(k in body.lower() for k in ("agenda", "add ")):
            drafts = extract_agenda(body) if "agenda" in body.lower() else []
            if drafts:
                self.notes.add_agenda_items([d.title for d in drafts],
                                            [d.timebox_s for d in drafts])
        self._take_notes(body, ctx)

    def _respond(self, addressed: Call, ctx: Speaking) -> list[str]:
        body = addressed.body
        now = self._clock()
        question = self._question
        if question is not None and now - question.asked_at > self._question_ttl_s:
            question = None
        self._question = None
        if addressed.name_only and not addressed.greeted:
            self._question = question
            return ["Yes? How can I help?"]

        intent = parse_intent(body)
        out: list[str] = []
        answered = self._answer(question, intent, body, out)

        started, went_back = self._navigate(intent, ctx, out)
        new_timebox = self._timebox(body, started, ctx, out)
        if started is not None:
            out.insert(0, phrases.went_back(started) if went_back
                       else phrases.started(started, new_timebox))

        if started is None and not intent.navigates:
            self._agenda(body, question, intent, ctx, out)
        took_notes = self._take_notes(body, ctx, out)
        if intent.complete_ref and (done := self.notes.find_action_item(intent.complete_ref)):
            if done.status == "open":
                self.notes.complete_action_item(done.id, ctx.wall_time)
            out.append(phrases.marked_done(done))

        if intent.ask_recap:
            out += phrases.recap(self.notes)
        else:
            if intent.ask_actions:
                out += phrases.list_actions(self.notes)
            if intent.ask_decisions:
                out += phrases.list_decisions(self.notes)
        if intent.ask_time:
            item = self.notes.active_item()
            out.append(phrases.time_left(item, self.timekeeper.remaining(now),
                                         self.timekeeper.elapsed(now)))
        if intent.ask_agenda:
            out += phrases.agenda_status(self.notes)
            if not self.notes.agenda:
                self._ask("agenda", None)
        elif intent.ask_next:
            out.append(phrases.next_up(self.notes))

        if intent.help or (addressed.greeted and not out and not took_notes):
            out += phrases.HELP_OFFER if intent.help else ["Hi! I'm here and taking notes."]
            if not self.notes.agenda:
                out.append(phrases.ASK_AGENDA)
                self._ask("agenda", None)
            elif (item := self.notes.active_item()) is not None:
                out.append(f"We're on {item.title}.")
        if intent.thanks and not out:
            out.append("You're welcome.")
        if not out:
            out = ["Okay."] if answered or intent.yes or intent.no else list(phrases.FALLBACK)
        asks = (intent.ask_recap or intent.ask_actions or intent.ask_decisions or intent.ask_time
                or intent.ask_agenda or intent.ask_next)
        return _speakable(phrases.acknowledged(out, asks))

    # ----------------------------------------------------------------------------- steps

    def _answer(self, question: _Question | None, intent: Intent, body: str,
                out: list[str]) -> bool:
        """Apply a yes/no (or a named choice) to the question the bot asked last."""
        if question is None:
            return False
        if question.kind in ("start", "which") and not intent.navigates and (
            m := re.search(r"\bgo with\s+(?P<x>[^.?!,]+)", body, re.IGNORECASE)
        ) and self.notes.find_item(m.group("x")):
            intent.start_ref = m.group("x")
            return True
        if question.kind == "which" and not intent.start_ref:
            intent.start_ref = intent.discuss_ref or body
            return True
        if not (intent.yes or intent.no):
            return False
        if question.kind == "start":
            if intent.yes and not intent.navigates and question.item_id:
                intent.start_ref = question.item_id
            elif intent.no and not intent.navigates:
                out.append("Okay. Which item should we start with?")
                self._ask("which", None)
        elif question.kind == "move":
            if intent.yes and not intent.navigates:
                nxt = self.notes.next_pending_item()
                if nxt is not None and nxt.id != question.item_id and question.item_id:
                    intent.start_ref = question.item_id
                else:
                    intent.next = True
            elif intent.no and not intent.navigates and (item := self.notes.active_item()):
                out.append(f"Okay, let's stay on {item.title}.")
        elif question.kind == "wrap":
            if intent.yes:
                intent.ask_recap = True
            elif intent.no:
                out.append("Okay, let's keep going.")
        elif question.kind == "agenda" and intent.no and not extract_agenda(body):
            out.append("No problem. Tell me when you have items for the agenda.")
        return True

    def _navigate(self, intent: Intent, ctx: Speaking,
                  out: list[str]) -> tuple[AgendaItem | None, bool]:
        """Start, move on, go back. Returns the item started and whether it was going back."""
        notes = self.notes
        ref = intent.start_ref
        if ref is None and intent.discuss_ref and notes.find_item(intent.discuss_ref):
            ref = intent.discuss_ref
        if ref is not None:
            item = notes.find_item(ref)
            if item is None and intent.start_may_add:
                change = notes.add_agenda_items([_title_from_ref(ref)])
                item = notes.find_item(change.payload["items"][0]["id"]) if change.payload[
                    "items"] else None
            if item is None:
                out.append(f"I don't see {ref} on the agenda.")
                return None, False
            if item.status == "active":
                return item, False
            back = item.status == "done" or intent.going_back
            notes.start_item(item.id, ctx.wall_time)
            return item, back
        if intent.back:
            try:
                change = notes.previous_item(ctx.wall_time)
            except NotesError:
                out.append("There's no earlier item to go back to.")
                return None, False
            return notes.find_item(str(change.payload["id"])), True
        if intent.next or (intent.start_plain and notes.active_item() is None):
            if not notes.agenda:
                out.append("We don't have any agenda items yet.")
                return None, False
            try:
                change = notes.next_item(ctx.wall_time)
            except NotesError:
                out.append("We've covered everything on the agenda.")
                return None, False
            nxt_id = change.payload["id"]
            nxt = notes.find_item(str(nxt_id)) if nxt_id else None
            if intent.start_plain and nxt is not None:
                return nxt, False
            out.append(phrases.moved_on(nxt))
            if nxt is None:
                self._ask("wrap", None)
        return None, False

    def _timebox(self, body: str, started: AgendaItem | None, ctx: Speaking,
                 out: list[str]) -> bool:
        """Set a timebox said in ``body``. True when it went on the item just started."""
        tb = extract_timebox(body)
        if tb is None:
            return False
        notes = self.notes
        item = notes.find_item(tb.ref) if tb.ref else None
        item = item or started or notes.active_item() or notes.next_pending_item()
        if item is None:
            out.append("There's no agenda item to put on the clock yet.")
            return False
        seconds = tb.seconds
        if tb.extra:
            elapsed = self.timekeeper.elapsed(self._clock()) if item.status == "active" else 0
            seconds = max(item.timebox_s or 0.0, elapsed or 0.0) + tb.seconds
        notes.set_timebox(seconds, item.id)
        if item is started:
            return True
        out.append(phrases.timebox_set(item, tb.seconds if tb.extra else None))
        return False

    def _agenda(self, body: str, question: _Question | None, intent: Intent, ctx: Speaking,
                out: list[str]) -> None:
        drafts = extract_agenda(body)
        if not drafts and question is not None and question.kind == "agenda" and not (
            intent.yes or intent.no or intent.ask_agenda or intent.help or "?" in body
        ):
            drafts = agenda_list(body)  # a bare answer to "What's on the agenda?"
        if not drafts:
            return
        notes = self.notes
        first_time = not notes.agenda
        change = notes.add_agenda_items([d.title for d in drafts], [d.timebox_s for d in drafts])
        new = [i for i in notes.agenda if i.id in {d["id"] for d in change.payload["items"]}]
        if not new:
            titles = join_words([d.title for d in drafts])
            out.append(f"{titles[:1].upper()}{titles[1:]} is already on the agenda."
                       if len(drafts) == 1 else "Those are already on the agenda.")
            return
        if intent.discuss_ref and len(new) == 1 and notes.active_item() is None:
            notes.start_item(new[0].id, ctx.wall_time)  # "let's discuss X": now, not later
            out.append(phrases.started(new[0], new_timebox=False))
            return
        out += phrases.agenda_added(new, first_time)
        if notes.active_item() is None and (first := notes.next_pending_item()) is not None:
            out.append(phrases.ask_start(first))
            self._ask("start", first.id)

    def _take_notes(self, body: str, ctx: Speaking, out: list[str] | None = None) -> bool:
        """Action items, decisions and notes in every sentence; confirmed into ``out``."""
        took = False
        for sentence in sentences(body):
            for draft in extract_action_items(sentence, ctx):
                self.notes.add_action_item(
                    draft.text, draft.owner,
                    due_text=draft.due.text if draft.due else None,
                    due_date=draft.due.date if draft.due else None,
                    source=ctx.utterance or sentence, speaker=ctx.speaker, wall_time=ctx.wall_time,
                )
                took = True
                if out is not None:
                    out.append(phrases.action_confirmation(self.notes.action_items[-1]))
            decision = extract_decision(sentence)
            if decision and not self._is_agenda_choice(decision):
                self.notes.add_decision(decision, ctx.speaker, ctx.wall_time)
                took = True
                if out is not None:
                    out.append(f"Noted the decision: {decision}.")
            note = extract_note(sentence, ctx.addressed_to_bot)
            if note:
                self.notes.add_note(note, ctx.speaker, ctx.wall_time)
                took = True
                if out is not None:
                    out.append(f"I've made a note: {note}.")
        return took

    # ----------------------------------------------------------------------------- helpers

    def _is_agenda_choice(self, decision: str) -> bool:
        """ "let's go with the budget" answers "which first?", it is not a decision."""
        return decision.lower().startswith("go with ") and self.notes.find_item(
            decision[8:]) is not None and len(decision.split()) <= 5

    def _ask(self, kind: QuestionKind, item_id: str | None) -> None:
        self._question = _Question(kind, item_id, self._clock())

    def _try(self, op: Callable[[], object]) -> None:
        try:
            op()
        except NotesError:
            pass

    def _record_bot(self, said: list[str]) -> None:
        if self._record_own and said:
            self.notes.add_transcript_line(self.bot_name, " ".join(said), self._wall_clock(),
                                           is_bot=True)


@dataclass
class _Taken:
    line: int
    """Index of the turn's transcript line."""
    entries: list[str]
    """Ids of the action items, decisions and notes it added."""


def _turn_key(turn: Turn) -> tuple[str, float]:
    return (turn.speaker_id, turn.started_at)


def _collect(change: NoteChange, into: list[str]) -> None:
    if change.op in ("add_action_item", "add_decision", "add_note"):
        into.append(str(change.payload["id"]))


def _speakable(chunks: list[str]) -> list[str]:
    """One sentence per element (so TTS starts early), very short ones kept with the next so
    they are not spoken as a clipped fragment; except an opening acknowledgement ("Sure."),
    which is meant to be said at once, on its own."""
    out: list[str] = []
    carry = ""
    for s in (s for chunk in chunks for s in sentences(chunk)):
        if not out and not carry and s in phrases.ACKS:
            out.append(s)
            continue
        s = f"{carry} {s}" if carry else s
        if len(s.split()) <= 2:
            carry = s
            continue
        out.append(s)
        carry = ""
    if carry:
        out.append(carry)
    return out


def _title_from_ref(ref: str) -> str:
    drafts = agenda_list(ref)
    return drafts[0].title if drafts else ref
