"""The meeting notes model: agenda, action items, decisions, free notes and the transcript.

Every operation is a method that returns a :class:`NoteChange` (an op name plus a JSON payload
with everything resolved: ids, timestamps, status transitions). The change is applied through
one function, :meth:`MeetingNotes.apply`, so replaying a journal of changes rebuilds exactly the
same notes, and the same ops serve the rule brain, an LLM brain's tool calls and the room page
(which is pushed each change). Listeners registered with :meth:`MeetingNotes.subscribe` see
every applied change; the store uses that to journal it before anyone else hears of it.

The JSON shape of :meth:`MeetingNotes.to_dict` is documented in ``docs/notes-schema.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, get_args

from meetbot.meeting.matching import best_title_match, same_title

AgendaStatus = Literal["pending", "active", "done"]
ActionStatus = Literal["open", "done"]
NoteOp = Literal[
    "create",
    "set_title",
    "add_agenda_items",
    "start_item",
    "next_item",
    "previous_item",
    "set_timebox",
    "add_action_item",
    "complete_action_item",
    "add_decision",
    "add_note",
    "add_transcript_line",
    "withdraw",
    "amend_transcript_line",
    "update_action_item",
    "skip_item",
]
NOTE_OPS: tuple[str, ...] = get_args(NoteOp)
JsonDict = dict[str, Any]


class NotesError(ValueError):
    """An operation that cannot apply (unknown item, nothing active). The message is meant to be
    read by a person or an LLM deciding what to do instead."""


@dataclass(frozen=True)
class NoteChange:
    """One applied operation: what the room page is pushed and the journal records."""

    op: NoteOp
    payload: JsonDict

    def to_dict(self) -> JsonDict:
        return {"op": self.op, "payload": self.payload}

    @classmethod
    def from_dict(cls, data: JsonDict) -> NoteChange:
        op = data.get("op")
        payload = data.get("payload")
        if op not in NOTE_OPS:
            raise ValueError(f"unknown note operation {op!r}")
        if not isinstance(payload, dict):
            raise ValueError(f"operation {op!r} has no payload object")
        return cls(cast(NoteOp, op), payload)


@dataclass
class AgendaItem:
    id: str
    title: str
    timebox_s: float | None = None
    status: AgendaStatus = "pending"
    started_at_wall: float | None = None
    ended_at_wall: float | None = None

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "title": self.title,
            "timebox_s": self.timebox_s,
            "status": self.status,
            "started_at_wall": self.started_at_wall,
            "ended_at_wall": self.ended_at_wall,
        }

    @classmethod
    def from_dict(cls, d: JsonDict) -> AgendaItem:
        status = d.get("status", "pending")
        if status not in ("pending", "active", "done"):
            raise ValueError(f"agenda item {d.get('id')!r} has bad status {status!r}")
        return cls(
            id=_str(d, "id"),
            title=_str(d, "title"),
            timebox_s=_opt_float(d, "timebox_s"),
            status=status,
            started_at_wall=_opt_float(d, "started_at_wall"),
            ended_at_wall=_opt_float(d, "ended_at_wall"),
        )


@dataclass
class ActionItem:
    id: str
    text: str
    owner: str
    due_text: str | None = None
    """The due date as said ("Friday", "end of the week")."""
    due_date: str | None = None
    """``due_text`` resolved to an ISO date (YYYY-MM-DD) when it could be."""
    source: str = ""
    """The utterance the item was taken from, for checking later."""
    speaker: str = ""
    wall_time: float = 0.0
    status: ActionStatus = "open"

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "text": self.text,
            "owner": self.owner,
            "due_text": self.due_text,
            "due_date": self.due_date,
            "status": self.status,
            "speaker": self.speaker,
            "source": self.source,
            "wall_time": self.wall_time,
        }

    @classmethod
    def from_dict(cls, d: JsonDict) -> ActionItem:
        status = d.get("status", "open")
        if status not in ("open", "done"):
            raise ValueError(f"action item {d.get('id')!r} has bad status {status!r}")
        return cls(
            id=_str(d, "id"),
            text=_str(d, "text"),
            owner=_str(d, "owner", ""),
            due_text=_opt_str(d, "due_text"),
            due_date=_opt_str(d, "due_date"),
            source=_str(d, "source", ""),
            speaker=_str(d, "speaker", ""),
            wall_time=_float(d, "wall_time", 0.0),
            status=status,
        )


@dataclass
class Decision:
    id: str
    text: str
    speaker: str = ""
    wall_time: float = 0.0

    def to_dict(self) -> JsonDict:
        return {"id": self.id, "text": self.text, "speaker": self.speaker,
                "wall_time": self.wall_time}

    @classmethod
    def from_dict(cls, d: JsonDict) -> Decision:
        return cls(_str(d, "id"), _str(d, "text"), _str(d, "speaker", ""),
                   _float(d, "wall_time", 0.0))


@dataclass
class Note:
    """A free-form note ("make a note that the numbers are preliminary")."""

    id: str
    text: str
    speaker: str = ""
    wall_time: float = 0.0

    def to_dict(self) -> JsonDict:
        return {"id": self.id, "text": self.text, "speaker": self.speaker,
                "wall_time": self.wall_time}

    @classmethod
    def from_dict(cls, d: JsonDict) -> Note:
        return cls(_str(d, "id"), _str(d, "text"), _str(d, "speaker", ""),
                   _float(d, "wall_time", 0.0))


@dataclass
class TranscriptLine:
    speaker: str
    text: str
    wall_time: float
    is_bot: bool = False

    def to_dict(self) -> JsonDict:
        return {"speaker": self.speaker, "text": self.text, "wall_time": self.wall_time,
                "is_bot": self.is_bot}

    @classmethod
    def from_dict(cls, d: JsonDict) -> TranscriptLine:
        return cls(_str(d, "speaker"), _str(d, "text"), _float(d, "wall_time", 0.0),
                   bool(d.get("is_bot", False)))


Listener = Callable[[NoteChange], None]


def _next_id(prefix: str, entries: Sequence[Any]) -> str:
    """``prefix-N`` one past the highest N in use: ids stay unique after a withdrawal."""
    used = [int(e.id.rsplit("-", 1)[1]) for e in entries
            if e.id.startswith(f"{prefix}-") and e.id.rsplit("-", 1)[1].isdigit()]
    return f"{prefix}-{max(used, default=0) + 1}"


@dataclass
class MeetingNotes:
    """The notes of one meeting. Mutate only through the op methods (or :meth:`apply`)."""

    title: str = "Meeting"
    room: str = ""
    started_at_wall: float = 0.0
    agenda: list[AgendaItem] = field(default_factory=list)
    action_items: list[ActionItem] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    transcript: list[TranscriptLine] = field(default_factory=list)
    _listeners: list[Listener] = field(default_factory=list, repr=False, compare=False)

    # ----------------------------------------------------------------------------- listeners

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every applied change; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, change: NoteChange) -> NoteChange:
        self.apply(change)
        for listener in list(self._listeners):
            listener(change)
        return change

    # ----------------------------------------------------------------------------- queries

    def active_item(self) -> AgendaItem | None:
        return next((i for i in self.agenda if i.status == "active"), None)

    def next_pending_item(self) -> AgendaItem | None:
        """The first pending item after the active one, else the first pending one at all."""
        active = self.active_item()
        if active is not None:
            after = self.agenda[self.agenda.index(active) + 1 :]
            found = next((i for i in after if i.status == "pending"), None)
            if found is not None:
                return found
        return next((i for i in self.agenda if i.status == "pending"), None)

    def find_item(self, ref: str) -> AgendaItem | None:
        """An agenda item by id, exact title, or best content-word overlap ("the budget")."""
        ref = ref.strip()
        for item in self.agenda:
            if item.id == ref:
                return item
        for item in self.agenda:
            if item.title.lower() == ref.lower():
                return item
        return best_title_match(ref, [(i, i.title) for i in self.agenda])

    def find_action_item(self, ref: str) -> ActionItem | None:
        for a in self.action_items:
            if a.id == ref.strip():
                return a
        return best_title_match(ref, [(a, a.text) for a in self.action_items])

    def open_action_items(self) -> list[ActionItem]:
        return [a for a in self.action_items if a.status == "open"]

    # ----------------------------------------------------------------------------- ops

    def set_title(self, title: str) -> NoteChange:
        title = title.strip()
        if not title:
            raise NotesError("the title is empty")
        return self._emit(NoteChange("set_title", {"title": title}))

    def add_agenda_items(
        self,
        titles: Sequence[str],
        timeboxes_s: Sequence[float | None] | None = None,
    ) -> NoteChange:
        """Append items in order, skipping titles already on the agenda (or repeated)."""
        if timeboxes_s is not None and len(timeboxes_s) != len(titles):
            raise NotesError("give one timebox per title (or none)")
        items: list[JsonDict] = []
        seen = [i.title for i in self.agenda]
        n = len(self.agenda)
        for k, raw in enumerate(titles):
            title = " ".join(raw.split())
            if not title or any(same_title(title, s) for s in seen):
                continue
            seen.append(title)
            n += 1
            timebox = timeboxes_s[k] if timeboxes_s is not None else None
            items.append({"id": f"item-{n}", "title": title,
                          "timebox_s": _check_timebox(timebox)})
        return self._emit(NoteChange("add_agenda_items", {"items": items}))

    def start_item(self, ref: str, wall_time: float | None = None) -> NoteChange:
        """Make the item named by ``ref`` (id or title words) the active one.

        The previously active item is marked done when we jump forward, and back to pending
        when we jump to an earlier item (going back), so "next item" later returns to it.
        """
        target = self.find_item(ref)
        if target is None:
            raise NotesError(f"no agenda item matches {ref!r}")
        wall = _now(wall_time)
        transitions: list[JsonDict] = []
        active = self.active_item()
        if active is not None and active is not target:
            going_back = self.agenda.index(target) < self.agenda.index(active)
            transitions.append({"id": active.id, "status": "pending" if going_back else "done"})
        if target.status != "active":
            transitions.append({"id": target.id, "status": "active"})
        return self._emit(NoteChange(
            "start_item", {"id": target.id, "wall_time": wall, "transitions": transitions}
        ))

    def next_item(self, wall_time: float | None = None) -> NoteChange:
        """Mark the active item done and start the next pending one (``id`` None at the end)."""
        wall = _now(wall_time)
        active = self.active_item()
        nxt = self.next_pending_item()
        if active is None and nxt is None:
            raise NotesError("there is no agenda item to move on to")
        transitions: list[JsonDict] = []
        if active is not None:
            transitions.append({"id": active.id, "status": "done"})
        if nxt is not None:
            transitions.append({"id": nxt.id, "status": "active"})
        return self._emit(NoteChange("next_item", {
            "id": nxt.id if nxt else None, "wall_time": wall, "transitions": transitions,
        }))

    def previous_item(self, wall_time: float | None = None) -> NoteChange:
        """Go back: the item before the active one becomes active, the active one pending."""
        wall = _now(wall_time)
        active = self.active_item()
        if active is not None:
            before = self.agenda[: self.agenda.index(active)]
        else:
            before = [i for i in self.agenda if i.status == "done"]
        if not before:
            raise NotesError("there is no earlier agenda item to go back to")
        target = before[-1]
        transitions: list[JsonDict] = []
        if active is not None:
            transitions.append({"id": active.id, "status": "pending"})
        transitions.append({"id": target.id, "status": "active"})
        return self._emit(NoteChange(
            "previous_item", {"id": target.id, "wall_time": wall, "transitions": transitions}
        ))

    def skip_item(self, ref: str, wall_time: float | None = None) -> NoteChange:
        """Take a pending item off today's plan ("let's skip hiring"): it is closed unheard,
        so moving on passes it by. The active item is skipped with ``next_item``."""
        target = self.find_item(ref)
        if target is None:
            raise NotesError(f"no agenda item matches {ref!r}")
        if target.status != "pending":
            raise NotesError(f"{target.title!r} is not waiting to be discussed")
        return self._emit(NoteChange("skip_item", {
            "id": target.id, "wall_time": _now(wall_time),
            "transitions": [{"id": target.id, "status": "done"}],
        }))

    def set_timebox(self, timebox_s: float | None, ref: str | None = None) -> NoteChange:
        """Set (or clear, with None) the timebox of the item ``ref``, the active one by default."""
        item = self.find_item(ref) if ref is not None else self.active_item()
        if item is None:
            raise NotesError(
                "no active agenda item to timebox" if ref is None
                else f"no agenda item matches {ref!r}"
            )
        return self._emit(NoteChange(
            "set_timebox", {"id": item.id, "timebox_s": _check_timebox(timebox_s)}
        ))

    def add_action_item(
        self,
        text: str,
        owner: str = "",
        *,
        due_text: str | None = None,
        due_date: str | None = None,
        source: str = "",
        speaker: str = "",
        wall_time: float | None = None,
    ) -> NoteChange:
        text = " ".join(text.split())
        if not text:
            raise NotesError("an action item needs text")
        item = ActionItem(
            id=_next_id("action", self.action_items), text=text, owner=owner.strip(),
            due_text=due_text, due_date=due_date, source=source, speaker=speaker,
            wall_time=_now(wall_time),
        )
        return self._emit(NoteChange("add_action_item", item.to_dict()))

    def update_action_item(self, entry_id: str, *, owner: str | None = None,
                           due_text: str | None = None, due_date: str | None = None,
                           text: str | None = None) -> NoteChange:
        """Correct an action item ("actually, make that Wednesday", "no, Lena owns that"):
        only the fields given change."""
        item = next((a for a in self.action_items if a.id == entry_id), None)
        if item is None:
            raise NotesError(f"no action item {entry_id!r}")
        fields: JsonDict = {}
        if owner is not None:
            fields["owner"] = owner.strip()
        if due_text is not None:
            fields["due_text"] = due_text
            fields["due_date"] = due_date
        if text is not None:
            if not text.strip():
                raise NotesError("an action item needs text")
            fields["text"] = " ".join(text.split())
        if not fields:
            raise NotesError("nothing to change")
        return self._emit(NoteChange("update_action_item", {"id": entry_id, **fields}))

    def complete_action_item(self, ref: str, wall_time: float | None = None) -> NoteChange:
        item = self.find_action_item(ref)
        if item is None:
            raise NotesError(f"no action item matches {ref!r}")
        return self._emit(NoteChange(
            "complete_action_item", {"id": item.id, "wall_time": _now(wall_time)}
        ))

    def add_decision(self, text: str, speaker: str = "",
                     wall_time: float | None = None) -> NoteChange:
        text = " ".join(text.split())
        if not text:
            raise NotesError("a decision needs text")
        d = Decision(_next_id("decision", self.decisions), text, speaker, _now(wall_time))
        return self._emit(NoteChange("add_decision", d.to_dict()))

    def add_note(self, text: str, speaker: str = "", wall_time: float | None = None) -> NoteChange:
        text = " ".join(text.split())
        if not text:
            raise NotesError("a note needs text")
        n = Note(_next_id("note", self.notes), text, speaker, _now(wall_time))
        return self._emit(NoteChange("add_note", n.to_dict()))

    def add_transcript_line(self, speaker: str, text: str, wall_time: float | None = None,
                            is_bot: bool = False) -> NoteChange:
        line = TranscriptLine(speaker, text.strip(), _now(wall_time), is_bot)
        return self._emit(NoteChange("add_transcript_line", line.to_dict()))

    def withdraw(self, entry_id: str) -> NoteChange:
        """Take back an action item, decision or note that was written down by mistake
        (the speaker went on and meant something else, or said "scratch that")."""
        ids = ([a.id for a in self.action_items] + [d.id for d in self.decisions]
               + [n.id for n in self.notes])
        if entry_id not in ids:
            raise NotesError(f"no action item, decision or note {entry_id!r}")
        return self._emit(NoteChange("withdraw", {"id": entry_id}))

    def amend_transcript_line(self, index: int, text: str) -> NoteChange:
        """Replace what a transcript line says: the first part of a turn, once the speaker
        went on, becomes the whole utterance (one line, as it was said)."""
        if not 0 <= index < len(self.transcript):
            raise NotesError(f"no transcript line {index}")
        return self._emit(NoteChange("amend_transcript_line",
                                     {"index": index, "text": text.strip()}))

    # ----------------------------------------------------------------------------- apply

    def apply(self, change: NoteChange) -> None:
        """Apply a change as recorded; the only place that mutates the notes."""
        p = change.payload
        op = change.op
        if op == "create":
            self.title = _str(p, "title", self.title)
            self.room = _str(p, "room", self.room)
            self.started_at_wall = _float(p, "started_at_wall", self.started_at_wall)
        elif op == "set_title":
            self.title = _str(p, "title")
        elif op == "add_agenda_items":
            for d in p.get("items", []):
                self.agenda.append(AgendaItem.from_dict(d))
        elif op in ("start_item", "next_item", "previous_item", "skip_item"):
            wall = _float(p, "wall_time", 0.0)
            for t in p.get("transitions", []):
                self._transition(self._item_by_id(_str(t, "id")), _str(t, "status"), wall)
        elif op == "set_timebox":
            self._item_by_id(_str(p, "id")).timebox_s = _opt_float(p, "timebox_s")
        elif op == "add_action_item":
            self.action_items.append(ActionItem.from_dict(p))
        elif op == "complete_action_item":
            self._action_by_id(_str(p, "id")).status = "done"
        elif op == "add_decision":
            self.decisions.append(Decision.from_dict(p))
        elif op == "add_note":
            self.notes.append(Note.from_dict(p))
        elif op == "add_transcript_line":
            self.transcript.append(TranscriptLine.from_dict(p))
        elif op == "withdraw":
            entry = _str(p, "id")
            self.action_items = [a for a in self.action_items if a.id != entry]
            self.decisions = [d for d in self.decisions if d.id != entry]
            self.notes = [n for n in self.notes if n.id != entry]
        elif op == "update_action_item":
            item = self._action_by_id(_str(p, "id"))
            if "owner" in p:
                item.owner = _str(p, "owner")
            if "due_text" in p:
                item.due_text = _opt_str(p, "due_text")
                item.due_date = _opt_str(p, "due_date")
            if "text" in p:
                item.text = _str(p, "text")
        elif op == "amend_transcript_line":
            index = int(_float(p, "index", -1))
            if not 0 <= index < len(self.transcript):
                raise ValueError(f"no transcript line {index}")
            self.transcript[index].text = _str(p, "text")
        else:  # pragma: no cover - NoteChange.from_dict rejects unknown ops
            raise ValueError(f"unknown note operation {op!r}")

    def _transition(self, item: AgendaItem, status: str, wall: float) -> None:
        if status == "active":
            item.status = "active"
            item.started_at_wall = wall
            item.ended_at_wall = None
        elif status == "done":
            if item.status == "active" or item.ended_at_wall is None:
                item.ended_at_wall = wall
            item.status = "done"
        elif status == "pending":
            item.status = "pending"
            item.ended_at_wall = None
        else:
            raise ValueError(f"bad agenda status {status!r}")

    def _item_by_id(self, item_id: str) -> AgendaItem:
        for item in self.agenda:
            if item.id == item_id:
                return item
        raise ValueError(f"no agenda item with id {item_id!r}")

    def _action_by_id(self, action_id: str) -> ActionItem:
        for a in self.action_items:
            if a.id == action_id:
                return a
        raise ValueError(f"no action item with id {action_id!r}")

    # ----------------------------------------------------------------------------- JSON

    def to_dict(self, transcript_limit: int | None = None) -> JsonDict:
        """The notes as the room page expects them.

        ``transcript_limit`` keeps only the last N transcript lines: the room's ``notes``
        message is capped at 64 KiB, and a long meeting's transcript would not fit.
        """
        lines = self.transcript
        if transcript_limit is not None:
            lines = lines[-transcript_limit:] if transcript_limit > 0 else []
        return {
            "title": self.title,
            "room": self.room,
            "started_at_wall": self.started_at_wall,
            "agenda": [i.to_dict() for i in self.agenda],
            "action_items": [a.to_dict() for a in self.action_items],
            "decisions": [d.to_dict() for d in self.decisions],
            "notes": [n.to_dict() for n in self.notes],
            "transcript": [t.to_dict() for t in lines],
        }

    @classmethod
    def from_dict(cls, d: JsonDict) -> MeetingNotes:
        if not isinstance(d, dict):
            raise ValueError("meeting notes must be a JSON object")
        return cls(
            title=_str(d, "title", "Meeting"),
            room=_str(d, "room", ""),
            started_at_wall=_float(d, "started_at_wall", 0.0),
            agenda=[AgendaItem.from_dict(x) for x in _list(d, "agenda")],
            action_items=[ActionItem.from_dict(x) for x in _list(d, "action_items")],
            decisions=[Decision.from_dict(x) for x in _list(d, "decisions")],
            notes=[Note.from_dict(x) for x in _list(d, "notes")],
            transcript=[TranscriptLine.from_dict(x) for x in _list(d, "transcript")],
        )


class NotesHolder(Protocol):
    """Anything that owns a meeting's notes: :class:`~meetbot.meeting.store.NotesStore` (which
    persists every change) or :class:`InMemoryNotes` (tests, throwaway sessions)."""

    @property
    def notes(self) -> MeetingNotes: ...


@dataclass
class InMemoryNotes:
    """Notes that are not persisted."""

    notes: MeetingNotes = field(default_factory=MeetingNotes)


def create_change(title: str, room: str, started_at_wall: float) -> NoteChange:
    """The first journal entry of a meeting."""
    return NoteChange("create", {"title": title, "room": room, "started_at_wall": started_at_wall})


# --------------------------------------------------------------------------------- helpers


def _now(wall_time: float | None) -> float:
    return time.time() if wall_time is None else float(wall_time)


def _check_timebox(timebox_s: float | None) -> float | None:
    if timebox_s is None:
        return None
    value = float(timebox_s)
    if not value > 0:
        raise NotesError("a timebox must be a positive number of seconds")
    return value


_MISSING = object()


def _str(d: JsonDict, key: str, default: Any = _MISSING) -> str:
    v = d.get(key, default)
    if v is _MISSING:
        raise ValueError(f"missing field {key!r}")
    if not isinstance(v, str):
        raise ValueError(f"field {key!r} must be a string, not {type(v).__name__}")
    return v


def _opt_str(d: JsonDict, key: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ValueError(f"field {key!r} must be a string or null")
    return v


def _float(d: JsonDict, key: str, default: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"field {key!r} must be a number")
    return float(v)


def _opt_float(d: JsonDict, key: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"field {key!r} must be a number or null")
    return float(v)


def _list(d: JsonDict, key: str) -> list[JsonDict]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise ValueError(f"field {key!r} must be a list of objects")
    return v
