"""Keeping the clock for the active agenda item: when to speak up, and what to say.

The timekeeper only decides; it never speaks. The bot asks :meth:`Timekeeper.due` when the room
is quiet and says the sentence, then calls :meth:`Timekeeper.mark_spoken`, or
:meth:`Timekeeper.defer` when it could not speak after all (someone started talking). Each cue
(a reminder, then "time is up") is spoken at most once per item and timebox, so changing the
timebox ("give it two more minutes") re-arms them.

Times are monotonic seconds (``time.monotonic()``). The timekeeper learns when an item started
by listening to the notes' changes; an item that was already active when it was created (a
restarted bot) is mapped from its wall-clock start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from meetbot.meeting.notes import AgendaItem, MeetingNotes, NoteChange
from meetbot.meeting.spoken import say_remaining, with_article

CueKind = Literal["reminder", "time_up"]


@dataclass(frozen=True)
class TimekeeperConfig:
    reminder_fraction: float = 1 / 3
    """Remind when this fraction of the timebox is left (30 min box -> at 10 min left)."""
    min_reminder_s: float = 10.0
    """...but at least this long before the end, so short boxes get a usable warning."""
    late_reminder_fraction: float = 0.25
    """A reminder held back (people talking) is dropped once less than this fraction of its
    threshold is left: "two seconds left" helps nobody, "time is up" follows soon."""


@dataclass(frozen=True)
class Cue:
    kind: CueKind
    item_id: str
    text: str
    next_item_id: str | None
    """The item the sentence proposes moving to, so a "yes" can be acted on."""
    remaining_s: float


class Timekeeper:
    def __init__(
        self,
        notes: MeetingNotes,
        config: TimekeeperConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._notes = notes
        self.config = config or TimekeeperConfig()
        self._clock = clock
        self._wall_clock = wall_clock
        self._starts: dict[str, float] = {}
        self._spoken: dict[tuple[str, float], set[CueKind]] = {}
        self._last: Cue | None = None
        self._quiet_until = float("-inf")
        self._unsubscribe = notes.subscribe(self._on_change)

    def close(self) -> None:
        self._unsubscribe()

    # ------------------------------------------------------------------------------- queries

    def reminder_threshold(self, timebox_s: float) -> float | None:
        """Seconds left at which to remind, or None when the box is too short for a reminder."""
        threshold = max(timebox_s * self.config.reminder_fraction, self.config.min_reminder_s)
        return threshold if threshold <= timebox_s / 2 else None

    def started_at(self, item: AgendaItem, now: float) -> float:
        """Monotonic start of ``item`` (mapped from its wall-clock start when not seen)."""
        if item.id not in self._starts:
            since = 0.0
            if item.started_at_wall is not None:
                since = max(0.0, self._wall_clock() - item.started_at_wall)
            self._starts[item.id] = now - since
            if item.timebox_s is not None:
                self._arm(item, item.timebox_s, now)
        return self._starts[item.id]

    def elapsed(self, now: float) -> float | None:
        item = self._notes.active_item()
        return None if item is None else now - self.started_at(item, now)

    def remaining(self, now: float) -> float | None:
        """Seconds left on the active item's timebox (negative when over), None if no box."""
        item = self._notes.active_item()
        if item is None or item.timebox_s is None:
            return None
        return self.started_at(item, now) + item.timebox_s - now

    # ------------------------------------------------------------------------------- cues

    def due_cue(self, now: float) -> Cue | None:
        """The cue to speak now, if any; stays due until marked spoken."""
        self._last = None
        if now < self._quiet_until:
            return None
        item = self._notes.active_item()
        if item is None or item.timebox_s is None:
            return None
        remaining = self.started_at(item, now) + item.timebox_s - now
        spoken = self._spoken.setdefault((item.id, item.timebox_s), set())
        nxt = self._notes.next_pending_item()
        if remaining <= 0:
            if "time_up" in spoken:
                return None
            self._last = Cue("time_up", item.id, _time_up_text(item, nxt), _id(nxt), remaining)
            return self._last
        threshold = self.reminder_threshold(item.timebox_s)
        if threshold is None or "reminder" in spoken or remaining > threshold:
            return None
        if remaining < threshold * self.config.late_reminder_fraction:
            spoken.add("reminder")
            return None
        self._last = Cue("reminder", item.id, _reminder_text(item, nxt, remaining), _id(nxt),
                         remaining)
        return self._last

    def due(self, now: float) -> str | None:
        cue = self.due_cue(now)
        return cue.text if cue else None

    def mark_spoken(self, cue: Cue | None = None) -> None:
        """Record that ``cue`` (default: the one last returned by ``due``) was said."""
        cue = cue or self._last
        if cue is None:
            return
        for (item_id, _box), kinds in self._spoken.items():
            if item_id == cue.item_id:
                kinds.add(cue.kind)
                if cue.kind == "time_up":
                    kinds.add("reminder")
        self._last = None

    def defer(self, now: float, retry_after_s: float = 1.0) -> None:
        """The cue could not be said now; offer it again after ``retry_after_s``."""
        self._quiet_until = now + retry_after_s
        self._last = None

    # ------------------------------------------------------------------------------- internals

    def _on_change(self, change: NoteChange) -> None:
        if change.op in ("start_item", "next_item", "previous_item"):
            now = self._clock()
            for t in change.payload.get("transitions", []):
                if t.get("status") == "active":
                    item_id = str(t["id"])
                    self._starts[item_id] = now
                    self._spoken = {k: v for k, v in self._spoken.items() if k[0] != item_id}
        elif change.op == "set_timebox":
            item = next((i for i in self._notes.agenda if i.id == change.payload["id"]), None)
            if item is not None and item.status == "active" and item.timebox_s is not None:
                now = self._clock()
                self.started_at(item, now)
                self._arm(item, item.timebox_s, now)

    def _arm(self, item: AgendaItem, timebox_s: float, now: float) -> None:
        """A new timebox: cues whose moment has already passed are not owed."""
        key = (item.id, timebox_s)
        if key in self._spoken:
            return
        spoken: set[CueKind] = set()
        remaining = self._starts[item.id] + timebox_s - now
        threshold = self.reminder_threshold(timebox_s)
        if threshold is not None and remaining <= threshold:
            spoken.add("reminder")
        self._spoken[key] = spoken


def _id(item: AgendaItem | None) -> str | None:
    return item.id if item else None


def _reminder_text(item: AgendaItem, nxt: AgendaItem | None, remaining: float) -> str:
    first = f"We have {say_remaining(remaining)} left for {with_article(item.title)}."
    if nxt is None:
        return first + " Let's start wrapping up."
    return f"{first} Should we move to {with_article(nxt.title)}?"


def _time_up_text(item: AgendaItem, nxt: AgendaItem | None) -> str:
    first = f"Time is up for {with_article(item.title)}."
    if nxt is None:
        return first + " Shall we wrap up?"
    return f"{first} Shall we move on to {with_article(nxt.title)}?"
