"""The default brain: offline, fast, and the one every meeting can count on.

It hears every turn: each goes into the transcript, and what the turn means (the language
layer's reading, meetbot/language/) is acted on whether or not the bot was addressed, so
action items, decisions, notes and agenda moves said between people are written down too. It
speaks only when addressed (or to keep time), in short sentences that confirm what it wrote
down. It remembers the question it last asked ("Should we start with the budget?"), a request
made to someone that still waits for their answer, and what it wrote last, so a bare "yes",
"sure, I'll do that" or "actually, make that Wednesday" is understood.

This module decides what to do and say; it never reads words itself. Every change goes through
the notes' ops on the store it was given, so it is persisted and pushed like any other brain's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Literal

from meetbot.brain import phrases
from meetbot.events import Turn
from meetbot.language.meaning import Act, Context, Meaning, PendingRequest
from meetbot.language.names import NameBook
from meetbot.language.reader import Reader
from meetbot.language.slots import agenda_items
from meetbot.language.text import join_words, sentences
from meetbot.meeting.notes import (
    ActionItem,
    AgendaItem,
    MeetingNotes,
    NoteChange,
    NotesError,
    NotesHolder,
)
from meetbot.meeting.spoken import with_article
from meetbot.meeting.timekeeper import Timekeeper, TimekeeperConfig
from meetbot.meeting.titles import agenda_title

QuestionKind = Literal["agenda", "start", "which", "move", "wrap"]

DEFAULT_EXTENSION_S = 300.0
""""Give us a few more minutes": how much a timebox grows when no amount is said."""
REQUEST_TTL_S = 180.0
"""How long a request to someone waits for their "sure, I'll do that"."""
CORRECTION_TTL_S = 180.0
"""How long after writing something down "actually, make that Wednesday" still corrects it."""


@dataclass(frozen=True)
class _Question:
    kind: QuestionKind
    item_id: str | None
    asked_at: float
    text: str
    """The question as spoken: the language layer reads answers against it."""


@dataclass(frozen=True)
class _Request:
    request: PendingRequest
    entry_id: str
    """The action item written down for it (confirmed by a yes, withdrawn by a no)."""
    asked_at: float


@dataclass(frozen=True)
class _Written:
    kind: Literal["action", "decision", "note"]
    entry_id: str
    at: float


@dataclass
class _Reply:
    """What one addressed turn makes the bot say, gathered while its acts are applied."""

    lines: list[str] = field(default_factory=list)
    started: AgendaItem | None = None
    went_back: bool = False
    navigated: bool = False
    asked: bool = False
    """It asked the bot for information (the reply opens with "Sure.")."""
    understood: bool = False
    """Something was acted on, even if it needs no words ("yes" to a question)."""
    added: list[AgendaItem] = field(default_factory=list)
    added_lines: list[str] = field(default_factory=list)
    """The confirmation of what was added, left out when the turn started that very item
    ("let's discuss the budget": "Starting the budget discussion.")."""
    """Agenda items this turn added ("add pricing and give it ten minutes": "it")."""
    closing: list[str] = field(default_factory=list)
    """Said last: the question the reply ends with ("Should we start with the budget?")."""


class RuleBrain:
    """Implements :class:`meetbot.brain.base.Brain` on the language layer and the notes."""

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
        reader: Reader | None = None,
    ) -> None:
        """``store`` owns the notes (a :class:`~meetbot.meeting.store.NotesStore` persists
        them); ``clock`` is monotonic (timeboxes), ``wall_clock`` unix time (notes); ``tz`` is
        the meeting's time zone for due dates (local when None). With ``record_own_replies``
        the brain adds its replies to the transcript (what it yielded, even if cut off).
        ``reader`` is the language layer (one is made for ``bot_name`` when None)."""
        self._store = store
        self.bot_name = bot_name
        self._clock = clock
        self._wall_clock = wall_clock
        self._tz = tz
        self._record_own = record_own_replies
        self._question_ttl_s = question_ttl_s
        self._reader = reader or Reader(bot_name)
        self.names = NameBook(participants, exclude=[bot_name])
        for line in store.notes.transcript:
            if not line.is_bot:
                self.names.add(line.speaker)
        for name in self.names.names:
            self._reader.add_participant(name)
        self.timekeeper = timekeeper or Timekeeper(
            store.notes, timekeeper_config, clock=clock, wall_clock=wall_clock
        )
        self._question: _Question | None = None
        self._request: _Request | None = None
        self._written: _Written | None = None
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
        self._reader.add_participant(name)

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
        question = sentences(cue.text)[-1]
        if cue.next_item_id is not None:
            self._question = _Question("move", cue.next_item_id, self._clock(), question)
        else:
            self._question = _Question("wrap", None, self._clock(), question)
        self._record_bot([cue.text])
        return cue.text

    # ----------------------------------------------------------------------------- turns

    def handle(self, turn: Turn) -> list[str]:
        """Record the turn, act on what it means, and return the reply sentences (maybe
        none). The synchronous core of :meth:`reply`; unlike ``reply`` it does not add the
        bot's own answer to the transcript."""
        raw = turn.text.strip()
        if not raw:
            return []
        if turn.speaker_name and turn.speaker_name != self.bot_name:
            self.add_participant(turn.speaker_name)
        taken = self._taken.pop(_turn_key(turn.amends), None) if turn.amends else None
        if taken is not None:
            # The speaker went on: the first part was not the whole thought. What it alone put
            # down is taken back, and its transcript line becomes the whole utterance.
            for entry_id in taken.entries:
                with contextlib.suppress(NotesError):
                    self.notes.withdraw(entry_id)
            self.notes.amend_transcript_line(taken.line, raw)
            if taken.question is not None:
                self._question = taken.question
        else:
            self.notes.add_transcript_line(turn.speaker_name, raw, turn.wall_time)
        record = _Taken(len(self.notes.transcript) - 1 if taken is None else taken.line, [],
                        self._live_question())
        self._taken = {**dict(list(self._taken.items())[-7:]), _turn_key(turn): record}
        unsubscribe = self.notes.subscribe(lambda change: _collect(change, record.entries))
        try:
            return self._handle(turn, raw)
        finally:
            unsubscribe()

    def _handle(self, turn: Turn, raw: str) -> list[str]:
        question = self._live_question()
        meaning = self._reader.read(raw, self._context(turn, question), guess=turn.addressed,
                                    addressed=turn.addressed)
        if not turn.addressed:
            self._listen(meaning, turn)
            return []
        self._question = None
        return self._respond(meaning, turn, question)

    def _context(self, turn: Turn, question: _Question | None) -> Context:
        notes = self.notes
        active = notes.active_item()
        request = self._request
        if request is not None and self._clock() - request.asked_at > REQUEST_TTL_S:
            request = self._request = None
        written = self._recent_written()
        return Context(
            speaker=turn.speaker_name,
            participants=tuple(self.names.names),
            bot_asked=question.text if question is not None else None,
            agenda=tuple(i.title for i in notes.agenda),
            active_item=active.title if active is not None else None,
            pending_request=request.request if request is not None else None,
            last_note_kind=written.kind if written is not None else None,
            wall_time=turn.wall_time,
            tz=self._tz,
        )

    def _live_question(self) -> _Question | None:
        q = self._question
        if q is not None and self._clock() - q.asked_at > self._question_ttl_s:
            return None
        return q

    # ----------------------------------------------------------------------------- listening

    _HEARD_BETWEEN_PEOPLE = frozenset({
        "agenda.add", "agenda.start", "agenda.next", "agenda.previous", "agenda.goto",
        "agenda.skip", "time.set", "time.extend", "action.add", "action.request",
        "action.accept", "action.complete", "answer.no", "correction.due", "correction.owner",
        "correction.remove", "decision.add", "note.add",
    })
    """What the bot acts on when people say it to each other: it keeps the notes and follows
    the agenda, but it answers questions only when asked."""

    def _listen(self, meaning: Meaning, turn: Turn) -> None:
        """Unaddressed: take notes and follow the agenda silently (asking nothing, so the
        question the bot last asked stays the one it waits on)."""
        out = _Reply()
        question = self._question
        for act in _by_stage(meaning.acts):
            if act.intent in self._HEARD_BETWEEN_PEOPLE:
                with contextlib.suppress(NotesError):
                    self._apply(act, turn, out, meaning)
        self._question = question

    # ----------------------------------------------------------------------------- answering

    def _respond(self, meaning: Meaning, turn: Turn, question: _Question | None) -> list[str]:
        call = meaning.call
        if call.name_only and not call.greeted and not meaning.acts:
            self._question = question  # "Assistant?" — still waiting for the answer
            return ["Yes? How can I help?"]
        out = _Reply()
        acts = list(meaning.acts)
        if question is not None:
            acts = self._answer(question, acts, meaning, out)
        for act in _by_stage(acts):
            try:
                self._apply(act, turn, out, meaning)
            except NotesError as exc:
                out.lines.append(_plain(str(exc)))
        if out.started is not None:
            out.lines.insert(0, phrases.went_back(out.started) if out.went_back
                             else phrases.started(out.started, new_timebox=False))
        if out.navigated or out.started is not None:
            out.closing = [c for c in out.closing if c not in
                           (phrases.ask_start(i) for i in self.notes.agenda)]
        started_new = out.started is not None and out.started in out.added
        lines = [*out.lines[:1], *([] if started_new else out.added_lines), *out.lines[1:],
                 *out.closing] if out.started is not None else [
                     *out.added_lines, *out.lines, *out.closing]
        if call.greeted and not lines and not acts:
            lines = ["Hi! I'm here and taking notes."]
            lines += self._orientation()
        if not lines:
            if any(a.intent == "meta.quiet" for a in acts):
                return []
            lines = ["Okay."] if out.understood or _acknowledges(meaning.text) else list(
                phrases.FALLBACK)
        return _speakable(phrases.acknowledged(lines, out.asked))

    def _orientation(self) -> list[str]:
        """Where the meeting stands, for someone who just said hello."""
        if not self.notes.agenda:
            self._ask("agenda", None, phrases.ASK_AGENDA)
            return [phrases.ASK_AGENDA]
        if (item := self.notes.active_item()) is not None:
            return [f"We're on {item.title}."]
        return []

    def _answer(self, question: _Question, acts: list[Act], meaning: Meaning,
                out: _Reply) -> list[Act]:
        """Turn a yes, a no or a bare answer to the bot's last question into the acts it
        stands for ("yes" to "Should we start with the budget?" starts the budget)."""
        intents = {a.intent for a in acts}
        yes, no = "answer.yes" in intents, "answer.no" in intents
        navigates = bool(intents & _NAVIGATION)
        rest = [a for a in acts if a.intent not in ("answer.yes", "answer.no")]
        if yes or no:
            out.understood = True
        if question.kind == "start":
            if yes and not navigates and question.item_id:
                return [Act("agenda.start", {"item": question.item_id}), *rest]
            if no and not navigates:
                out.lines.append("Okay. Which item should we start with?")
                self._ask("which", None, "Which item should we start with?")
        elif question.kind == "which" and not navigates:
            ref = self._item_named(meaning.text)
            if ref is not None:
                return [Act("agenda.start", {"item": ref}), *rest]
        elif question.kind == "move":
            if yes and not navigates:
                nxt = self.notes.next_pending_item()
                if question.item_id and (nxt is None or nxt.id != question.item_id):
                    return [Act("agenda.start", {"item": question.item_id}), *rest]
                return [Act("agenda.next", {}), *rest]
            if no and not navigates and (item := self.notes.active_item()):
                out.lines.append(f"Okay, let's stay on {item.title}.")
        elif question.kind == "wrap":
            if yes:
                return [Act("ask.recap", {}), *rest]
            if no:
                out.lines.append("Okay, let's keep going.")
        elif question.kind == "agenda":
            if no and "agenda.add" not in intents:
                out.lines.append("No problem. Tell me when you have items for the agenda.")
            elif not rest and not yes and "?" not in meaning.text:
                # A bare answer to "What's on the agenda?": the list itself.
                items = agenda_items(meaning.text)
                if items:
                    return [Act("agenda.add", {"items": items})]
        return rest

    def _item_named(self, text: str) -> str | None:
        item = self.notes.find_item(text)
        return item.id if item is not None else None

    # ----------------------------------------------------------------------------- acts

    def _apply(self, act: Act, turn: Turn, out: _Reply, meaning: Meaning) -> None:
        """Carry out one act; confirmations and answers go into ``out``."""
        handler = _HANDLERS.get(act.intent)
        if handler is None:
            return
        out.understood = True
        handler(self, act.slots, turn, out, meaning)

    def _agenda_add(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                    meaning: Meaning) -> None:
        said = [t for t in slots.get("items") or [] if isinstance(t, str) and t.strip()]
        titles = [agenda_title(t, meaning.text) for t in said]
        if not titles:
            return
        boxes = slots.get("timeboxes")
        timeboxes = ([float(b) if isinstance(b, int | float) and b > 0 else None for b in boxes]
                     if isinstance(boxes, list) and len(boxes) == len(titles) else None)
        notes = self.notes
        first_time = not notes.agenda
        change = notes.add_agenda_items(titles, timeboxes)
        new_ids = {d["id"] for d in change.payload["items"]}
        new = [i for i in notes.agenda if i.id in new_ids]
        if not new:
            listed = join_words(titles)
            out.lines.append(f"{listed[:1].upper()}{listed[1:]} is already on the agenda."
                             if len(titles) == 1 else "Those are already on the agenda.")
            return
        out.added += new
        out.added_lines += phrases.agenda_added(new, first_time)
        if notes.active_item() is None and not meaning.has(*_NAVIGATION) and (
                first := notes.next_pending_item()) is not None:
            text = phrases.ask_start(first)
            out.closing.append(text)
            self._ask("start", first.id, text)

    def _agenda_start(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                      meaning: Meaning) -> None:
        ref = slots.get("item")
        if ref:
            self._start(str(ref), turn, out, add_missing=True)
            return
        notes = self.notes
        if (active := notes.active_item()) is not None:
            out.lines.append(f"We're on {active.title}.")
            return
        if not notes.agenda:
            out.lines.append("We don't have any agenda items yet.")
            out.closing.append(phrases.ASK_AGENDA)
            self._ask("agenda", None, phrases.ASK_AGENDA)
            return
        change = notes.next_item(turn.wall_time)
        nxt = notes.find_item(str(change.payload["id"])) if change.payload["id"] else None
        out.started, out.navigated = nxt, True

    def _start(self, ref: str, turn: Turn, out: _Reply, *, add_missing: bool) -> None:
        notes = self.notes
        item = notes.find_item(ref)
        if item is None and add_missing:
            change = notes.add_agenda_items([agenda_title(ref)])
            if change.payload["items"]:
                item = notes.find_item(change.payload["items"][0]["id"])
        if item is None:
            out.lines.append(f"I don't see {ref} on the agenda.")
            return
        out.navigated = True
        if item.status == "active":
            out.started = item
            return
        back = item.status == "done" or (
            (active := notes.active_item()) is not None
            and notes.agenda.index(item) < notes.agenda.index(active))
        notes.start_item(item.id, turn.wall_time)
        out.started, out.went_back = item, back

    def _agenda_goto(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                     meaning: Meaning) -> None:
        if slots.get("item"):
            self._start(str(slots["item"]), turn, out, add_missing=True)

    def _agenda_next(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                     meaning: Meaning) -> None:
        notes = self.notes
        if not notes.agenda:
            out.lines.append("We don't have any agenda items yet.")
            return
        try:
            change = notes.next_item(turn.wall_time)
        except NotesError:
            out.lines.append("We've covered everything on the agenda.")
            return
        out.navigated = True
        nxt_id = change.payload["id"]
        nxt = notes.find_item(str(nxt_id)) if nxt_id else None
        out.lines.append(phrases.moved_on(nxt))
        if nxt is None:
            self._ask("wrap", None, sentences(phrases.moved_on(None))[-1])

    def _agenda_previous(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                         meaning: Meaning) -> None:
        try:
            change = self.notes.previous_item(turn.wall_time)
        except NotesError:
            out.lines.append("There's no earlier item to go back to.")
            return
        out.navigated = True
        out.started = self.notes.find_item(str(change.payload["id"]))
        out.went_back = True

    def _agenda_skip(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                     meaning: Meaning) -> None:
        notes = self.notes
        ref = slots.get("item")
        item = notes.find_item(str(ref)) if ref else notes.active_item()
        if item is None:
            out.lines.append(f"I don't see {ref} on the agenda." if ref
                             else "We haven't started an agenda item yet.")
            return
        if item.status == "active":
            self._agenda_next({}, turn, out, meaning)
            return
        notes.skip_item(item.id, turn.wall_time)
        out.lines.append(f"Okay, we'll skip {with_article(item.title)}.")

    def _time_set(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                  meaning: Meaning) -> None:
        seconds = slots.get("seconds")
        if not isinstance(seconds, int | float) or seconds <= 0:
            return
        if meaning.has("agenda.add") and not slots.get("item") and any(
                a.slots.get("timeboxes") for a in meaning.acts if a.intent == "agenda.add"):
            return  # the times went on the items as they were added
        notes = self.notes
        ref = slots.get("item")
        item = notes.find_item(str(ref)) if ref else None
        if item is None and ref:
            change = notes.add_agenda_items([agenda_title(str(ref))])
            if change.payload["items"]:
                item = notes.find_item(change.payload["items"][0]["id"])
                if item is not None:
                    out.lines.append(f"Added {item.title} to the agenda.")
        item = (item or out.started or (out.added[-1] if out.added else None)
                or notes.active_item() or notes.next_pending_item())
        if item is None:
            out.lines.append("There's no agenda item to put on the clock yet.")
            return
        notes.set_timebox(float(seconds), item.id)
        if item is out.started and out.started is not None:
            out.lines.insert(0, phrases.started(item, new_timebox=True))
            out.started = None
            return
        out.lines.append(phrases.timebox_set(item, None))

    def _time_extend(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                     meaning: Meaning) -> None:
        extra = slots.get("seconds")
        extra_s = float(extra) if isinstance(extra, int | float) and extra > 0 else (
            DEFAULT_EXTENSION_S)
        notes = self.notes
        item = notes.active_item() or notes.next_pending_item()
        if item is None:
            out.lines.append("There's no agenda item to put on the clock yet.")
            return
        elapsed = self.timekeeper.elapsed(self._clock()) if item.status == "active" else 0
        notes.set_timebox(max(item.timebox_s or 0.0, elapsed or 0.0) + extra_s, item.id)
        out.lines.append(phrases.timebox_set(item, extra_s))

    def _time_left(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                   meaning: Meaning) -> None:
        now = self._clock()
        out.asked = True
        out.lines.append(phrases.time_left(self.notes.active_item(),
                                           self.timekeeper.remaining(now),
                                           self.timekeeper.elapsed(now)))

    def _agenda_ask(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                    meaning: Meaning) -> None:
        out.asked = True
        out.lines += phrases.agenda_status(self.notes)
        if not self.notes.agenda:
            self._ask("agenda", None, phrases.ASK_AGENDA)

    def _agenda_ask_next(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                         meaning: Meaning) -> None:
        if out.navigated:
            return  # "we're done here, what's next?": moving on already said what is next
        out.asked = True
        out.lines.append(phrases.next_up(self.notes))

    def _action_add(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                    meaning: Meaning) -> None:
        task = str(slots.get("task") or "").strip()
        if not task:
            return
        owner = str(slots.get("owner") or "")
        if _is_pro_form(task):
            # "I'll do it": a commitment to something said before, or to nothing known.
            if self._request is not None and owner == self._request.request.owner:
                self._action_accept({}, turn, out, meaning)
            return
        self._add_action(task, owner, slots.get("due_text"), slots.get("due"), turn, out)

    def _add_action(self, task: str, owner: str, due_text: Any, due_date: Any, turn: Turn,
                    out: _Reply) -> str:
        change = self.notes.add_action_item(
            _as_noted(task, owner, turn.speaker_name), owner,
            due_text=str(due_text) if due_text else None,
            due_date=str(due_date) if due_date else None,
            source=turn.text, speaker=turn.speaker_name, wall_time=turn.wall_time,
        )
        entry_id = str(change.payload["id"])
        self._wrote("action", entry_id)
        out.lines.append(phrases.action_confirmation(self.notes.action_items[-1]))
        return entry_id

    def _action_request(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                        meaning: Meaning) -> None:
        """"Marco, can you send the roadmap by Thursday?": written down for Marco at once
        (most such requests are simply done), and remembered, so Marco's "sure, I'll do
        that" confirms it and his "sorry, I can't" takes it back."""
        task = str(slots.get("task") or "").strip()
        owner = slots.get("owner")
        if not owner:
            others = self.names.others(turn.speaker_name)
            owner = others[0] if len(others) == 1 else None  # "can you ...": the only other
        if not owner or not task or owner == turn.speaker_name or _is_pro_form(task):
            return
        entry_id = self._add_action(task, str(owner), slots.get("due_text"), slots.get("due"),
                                    turn, out)
        self._request = _Request(
            PendingRequest(str(owner), task, str(slots["due"]) if slots.get("due") else None),
            entry_id, self._clock())

    def _action_accept(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                       meaning: Meaning) -> None:
        request = self._request
        if request is None or self._clock() - request.asked_at > REQUEST_TTL_S:
            return
        if request.request.owner.lower() != turn.speaker_name.lower():
            return
        self._request = None
        item = next((a for a in self.notes.action_items if a.id == request.entry_id), None)
        if item is not None:
            self._wrote("action", item.id)
            out.lines.append(phrases.action_confirmation(item))

    def _answer_no(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                   meaning: Meaning) -> None:
        """A refusal by the person a request was made to takes the request back."""
        request = self._request
        if request is None or request.request.owner.lower() != turn.speaker_name.lower() or \
                self._clock() - request.asked_at > REQUEST_TTL_S:
            return
        self._request = None
        with contextlib.suppress(NotesError):
            self.notes.withdraw(request.entry_id)
            out.lines.append(f"Okay, {request.request.owner} won't take that.")

    def _action_complete(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                         meaning: Meaning) -> None:
        task = slots.get("task")
        notes = self.notes
        done: ActionItem | None = notes.find_action_item(str(task)) if task else None
        if done is None and not task:
            mine = [a for a in notes.open_action_items() if a.owner == turn.speaker_name]
            done = mine[-1] if mine else None
        if done is None:
            if task:
                out.lines.append(f"I don't have an action item about {task}.")
            return
        if done.status == "open":
            notes.complete_action_item(done.id, turn.wall_time)
        out.lines.append(phrases.marked_done(done))

    def _recent_written(self) -> _Written | None:
        """What the bot wrote last, while a correction can still mean it."""
        written = self._written
        if written is None or self._clock() - written.at > CORRECTION_TTL_S:
            return None
        return written

    def _last_action(self) -> ActionItem | None:
        written = self._recent_written()
        if written is None or written.kind != "action":
            return None
        return next((a for a in self.notes.action_items if a.id == written.entry_id), None)

    def _correction_due(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                        meaning: Meaning) -> None:
        item = self._last_action()
        if item is None or not slots.get("due_text"):
            return
        self.notes.update_action_item(item.id, due_text=str(slots["due_text"]),
                                      due_date=str(slots["due"]) if slots.get("due") else None)
        out.lines.append(f"Okay, changed: {phrases.describe_action(item)}")

    def _correction_owner(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                          meaning: Meaning) -> None:
        item = self._last_action()
        owner = slots.get("owner")
        if item is None or not owner:
            return
        self.notes.update_action_item(item.id, owner=str(owner))
        out.lines.append(f"Okay, changed: {phrases.describe_action(item)}")

    def _correction_remove(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                           meaning: Meaning) -> None:
        written = self._recent_written()
        if written is None:
            out.lines.append("There's nothing I just wrote down to take back.")
            return
        self.notes.withdraw(written.entry_id)
        self._written = None
        out.lines.append(f"Okay, I've taken that {_KIND_WORDS[written.kind]} off.")

    def _decision_add(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                      meaning: Meaning) -> None:
        text = str(slots.get("text") or "").strip()
        if text and not self._is_agenda_choice(text):
            change = self.notes.add_decision(text, turn.speaker_name, turn.wall_time)
            self._wrote("decision", str(change.payload["id"]))
            out.lines.append(f"Noted the decision: {text}.")

    def _note_add(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                  meaning: Meaning) -> None:
        text = str(slots.get("text") or "").strip()
        if text:
            change = self.notes.add_note(text, turn.speaker_name, turn.wall_time)
            self._wrote("note", str(change.payload["id"]))
            out.lines.append(f"I've made a note: {text}.")

    def _ask_recap(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                   meaning: Meaning) -> None:
        out.asked = True
        out.lines += phrases.recap(self.notes)

    def _ask_decisions(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                       meaning: Meaning) -> None:
        out.asked = True
        out.lines += phrases.list_decisions(self.notes)

    def _ask_actions(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                     meaning: Meaning) -> None:
        out.asked = True
        owner = slots.get("owner")
        out.lines += phrases.list_actions(self.notes, str(owner) if owner else None)

    def _ask_owner(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                   meaning: Meaning) -> None:
        out.asked = True
        task = slots.get("task")
        item = self.notes.find_action_item(str(task)) if task else None
        if item is None:
            out.lines += phrases.list_actions(self.notes) if not task else [
                f"Nobody has {task} yet."]
            return
        out.lines.append(phrases.describe_action(item))

    def _meta_presence(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                       meaning: Meaning) -> None:
        out.lines.append("Yes, I'm here and taking notes.")

    def _meta_take_notes(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                         meaning: Meaning) -> None:
        out.lines.append("Sure, I'm taking notes: agenda, decisions and action items.")
        out.lines += self._orientation()

    def _meta_help(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                   meaning: Meaning) -> None:
        out.lines += phrases.HELP_OFFER
        out.lines += self._orientation()

    def _meta_thanks(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                     meaning: Meaning) -> None:
        if len(meaning.acts) == 1:
            out.lines.append("You're welcome.")

    def _meta_quiet(self, slots: dict[str, Any], turn: Turn, out: _Reply,
                    meaning: Meaning) -> None:
        """"Be quiet": the bot has already stopped (barge-in); it says nothing more."""

    # ----------------------------------------------------------------------------- helpers

    def _is_agenda_choice(self, decision: str) -> bool:
        """ "let's go with the budget" answers "which first?", it is not a decision."""
        return decision.lower().startswith("go with ") and self.notes.find_item(
            decision[8:]) is not None and len(decision.split()) <= 5

    def _ask(self, kind: QuestionKind, item_id: str | None, text: str) -> None:
        self._question = _Question(kind, item_id, self._clock(), text)

    def _wrote(self, kind: Literal["action", "decision", "note"], entry_id: str) -> None:
        self._written = _Written(kind, entry_id, self._clock())

    def _record_bot(self, said: list[str]) -> None:
        if self._record_own and said:
            self.notes.add_transcript_line(self.bot_name, " ".join(said), self._wall_clock(),
                                           is_bot=True)


_Handler = Callable[[RuleBrain, dict[str, Any], Turn, _Reply, Meaning], None]
_HANDLERS: dict[str, _Handler] = {
    "agenda.add": RuleBrain._agenda_add,
    "agenda.start": RuleBrain._agenda_start,
    "agenda.next": RuleBrain._agenda_next,
    "agenda.previous": RuleBrain._agenda_previous,
    "agenda.goto": RuleBrain._agenda_goto,
    "agenda.skip": RuleBrain._agenda_skip,
    "agenda.ask": RuleBrain._agenda_ask,
    "agenda.ask_next": RuleBrain._agenda_ask_next,
    "time.set": RuleBrain._time_set,
    "time.extend": RuleBrain._time_extend,
    "time.left": RuleBrain._time_left,
    "time.used": RuleBrain._time_left,
    "action.add": RuleBrain._action_add,
    "action.request": RuleBrain._action_request,
    "action.accept": RuleBrain._action_accept,
    "action.complete": RuleBrain._action_complete,
    "correction.due": RuleBrain._correction_due,
    "correction.owner": RuleBrain._correction_owner,
    "correction.remove": RuleBrain._correction_remove,
    "decision.add": RuleBrain._decision_add,
    "note.add": RuleBrain._note_add,
    "ask.recap": RuleBrain._ask_recap,
    "ask.decisions": RuleBrain._ask_decisions,
    "ask.actions": RuleBrain._ask_actions,
    "ask.owner": RuleBrain._ask_owner,
    "meta.presence": RuleBrain._meta_presence,
    "meta.take_notes": RuleBrain._meta_take_notes,
    "meta.help": RuleBrain._meta_help,
    "meta.thanks": RuleBrain._meta_thanks,
    "meta.quiet": RuleBrain._meta_quiet,
    "answer.no": RuleBrain._answer_no,
}
"""What each intent of the language layer makes the brain do (answers are read in
``_answer``, against the question the bot asked)."""

_STAGES = ("answer.", "agenda.add", "agenda.", "time.set", "time.extend", "action.request",
           "action.", "correction.", "decision.", "note.", "ask.", "time.", "meta.")
"""The order a turn's acts are carried out in, whatever order they were said in: the agenda
before its timeboxes ("add pricing and give it ten minutes"), notes before questions about
them ("Lee will draft it; what are our action items?")."""


def _by_stage(acts: Iterable[Act]) -> list[Act]:
    def stage(act: Act) -> int:
        return next((i for i, p in enumerate(_STAGES) if act.intent.startswith(p)), len(_STAGES))

    return sorted(acts, key=stage)


_NAVIGATION = frozenset({"agenda.start", "agenda.next", "agenda.previous", "agenda.goto",
                         "agenda.skip"})
_KIND_WORDS = {"action": "action item", "decision": "decision", "note": "note"}


@dataclass
class _Taken:
    line: int
    """Index of the turn's transcript line."""
    entries: list[str]
    """Ids of the action items, decisions and notes it added."""
    question: _Question | None = None
    """The question that was open before the turn (its first part may have consumed it)."""


def _turn_key(turn: Turn) -> tuple[str, float]:
    return (turn.speaker_id, turn.started_at)


def _collect(change: NoteChange, into: list[str]) -> None:
    if change.op in ("add_action_item", "add_decision", "add_note"):
        into.append(str(change.payload["id"]))


_PRO_FORMS = frozenset("""do it|do that|do this|handle it|handle that|take it|take that|
take care of it|take care of that|get it|get that|send it|send that|look into it|
look into that|own it|own that|it|that|this""".replace("\n", "").split("|"))


def _is_pro_form(task: str) -> bool:
    """"do it", "take care of that": a task that names nothing by itself."""
    return " ".join(task.lower().split()) in _PRO_FORMS


def _as_noted(task: str, owner: str, speaker: str) -> str:
    """The task as the notes should read it, whoever reads them later: "send me the
    numbers" (Dana to Lee) is "send Dana the numbers"; "update my slides" said by its owner
    is "update their slides"."""
    if not speaker:
        return task
    own = owner == speaker
    words = task.split()
    out = []
    for word in words:
        low = word.lower()
        if low == "my":
            out.append("their" if own else f"{speaker}'s")
        elif low == "me" and not own:
            out.append(speaker)
        elif low == "mine" and not own:
            out.append(f"{speaker}'s")
        else:
            out.append(word)
    return " ".join(out)


_ACKNOWLEDGEMENTS = frozenset(
    "yes yeah yep sure okay ok alright right fine no nope nah cool great good".split())


def _acknowledges(text: str) -> bool:
    """A bare "yes" or "okay" with no question to answer: heard, nothing to do."""
    words = [w.strip(".,!?").lower() for w in text.split()]
    return 0 < len(words) <= 3 and words[0] in _ACKNOWLEDGEMENTS


def _plain(message: str) -> str:
    """A notes error, as a sentence to say."""
    message = message.strip().rstrip(".")
    return f"{message[:1].upper()}{message[1:]}."


def _speakable(chunks: list[str]) -> list[str]:
    """One sentence per element (so TTS starts early), very short ones kept with the next so
    they are not spoken as a clipped fragment; except an opening acknowledgement ("Sure."),
    which is meant to be said at once, on its own."""
    out: list[str] = []
    carry = ""
    for s in (s for chunk in chunks if chunk for s in sentences(chunk)):
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
