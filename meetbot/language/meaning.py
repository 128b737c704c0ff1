"""What the language layer says an utterance meant: typed values, no behaviour.

The intent names and slots are the ones of the labeled corpus (benchmarks/corpus/README.md),
so the benchmark scores exactly what the brain acts on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from meetbot.language.calling import Call

INTENTS = (
    "agenda.add", "agenda.start", "agenda.next", "agenda.previous", "agenda.goto",
    "agenda.skip", "agenda.ask", "agenda.ask_next",
    "time.set", "time.extend", "time.left", "time.used",
    "action.add", "action.request", "action.accept", "action.complete",
    "correction.due", "correction.owner", "correction.remove",
    "decision.add", "note.add",
    "ask.recap", "ask.decisions", "ask.actions", "ask.owner",
    "meta.presence", "meta.take_notes", "meta.help", "meta.thanks", "meta.quiet",
    "answer.yes", "answer.no",
)
"""Every intent the layer can report (see the corpus README for their slots)."""


@dataclass(frozen=True)
class Act:
    """One thing an utterance does: an intent and its slots."""

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "slots": dict(self.slots)}


@dataclass(frozen=True)
class PendingRequest:
    """A request made to a named person, waiting for their answer."""

    owner: str
    task: str
    due: str | None = None


@dataclass(frozen=True)
class Context:
    """What the reader needs to know about the meeting to read one utterance."""

    speaker: str = ""
    participants: tuple[str, ...] = ()
    bot_asked: str | None = None
    """The question the bot asked just before, if it still waits for an answer."""
    agenda: tuple[str, ...] = ()
    active_item: str | None = None
    pending_request: PendingRequest | None = None
    last_note_kind: str | None = None
    """"action", "decision" or "note": what a correction would correct."""
    wall_time: float = field(default_factory=time.time)
    tz: tzinfo | None = None


@dataclass(frozen=True)
class Meaning:
    """Whether an utterance calls the bot, and everything it asks or states."""

    call: Call
    acts: tuple[Act, ...]
    text: str
    """The normalised text without the call, as the slots were read from it."""

    @property
    def called(self) -> bool:
        return self.call.vocative

    def first(self, intent: str) -> Act | None:
        return next((a for a in self.acts if a.intent == intent), None)

    def has(self, *intents: str) -> bool:
        return any(a.intent in intents for a in self.acts)
