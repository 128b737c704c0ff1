"""The sentences the rule brain speaks.

Short, natural, one idea each, so TTS can start on the first while the rest are made, and so a
participant hears exactly what was written down. Numbers are words: this text is spoken.
"""

from __future__ import annotations

from meetbot.language.text import cap, join_words
from meetbot.meeting.notes import ActionItem, AgendaItem, MeetingNotes
from meetbot.meeting.spoken import number_words, say_duration, say_remaining, with_article

ACKS = ("Okay.", "Sure.", "Got it.", "Great!", "Of course!")
"""Words of acknowledgement a reply may open with, spoken on their own: they are short and
always the same, so their sound is ready the moment the turn ends (the TTS phrase cache), and
the rest of the reply is synthesized while they play. People answer like that too."""
HELP_OFFER = [
    "Of course! I'm here to help.",
    "I can take notes, track action items, and keep us on schedule.",
]
ASK_AGENDA = "What's on the agenda today?"
FALLBACK = [
    "Sorry, I'm not sure how to help with that.",
    "I can take notes, track action items and decisions, and keep time on the agenda.",
]


def stock() -> list[str]:
    """Every fixed sentence the rule brain says, for the speech engine to prepare ahead."""
    return [*ACKS, *HELP_OFFER, ASK_AGENDA, *FALLBACK, "You're welcome.", "Yes? How can I help?",
            "Hi! I'm here and taking notes.", "We have no action items yet.",
            "No decisions recorded yet.", "We don't have an agenda yet."]


def acknowledged(out: list[str], asks: bool) -> list[str]:
    """``out`` opened with an acknowledgement ("Sure." to a question, "Okay." to a request)
    unless it already opens with something as short."""
    if not out or len(out[0].split()) <= 2 or out[0].startswith(
        ("Okay", "Sure", "Got it", "Great", "Of course", "Yes", "Hi", "You're", "Sorry")
    ):
        return out
    return ["Sure." if asks else "Okay.", *out]


def count(n: int, noun: str) -> str:
    """2, "item" -> "two items"."""
    return f"{number_words(n)} {noun}{'' if n == 1 else 's'}"


def describe_action(a: ActionItem) -> str:
    """"Lee is going to draft the launch announcement by Friday."

    Worded so that it survives speech synthesis and recognition: "Lee will" is often heard as
    "we will", and ", due Friday" as "do Friday".
    """
    due = f" by {a.due_text}" if a.due_text else ""
    if a.owner and a.text.split()[0].lower() in ("the", "a", "an", "our", "their", "this"):
        return f"{a.owner} owns {a.text}{due}."  # "Ed, you're in charge of the survey"
    if a.owner:
        return f"{a.owner} is going to {a.text}{due}."
    return f"{cap(a.text)}{due}, with no owner yet."


def marked_done(a: ActionItem) -> str:
    return f"Marked done: {a.owner} to {a.text}." if a.owner else f"Marked done: {a.text}."


def action_confirmation(a: ActionItem) -> str:
    return "Got it. " + describe_action(a)


def list_actions(notes: MeetingNotes, owner: str | None = None) -> list[str]:
    """The open action items (of ``owner`` only, when given), one sentence each."""
    if owner is not None:
        theirs = [a for a in notes.open_action_items() if a.owner == owner]
        if not theirs:
            return [f"{owner} has no open action items."]
        return [describe_action(a) for a in theirs]
    open_items = notes.open_action_items()
    done = len(notes.action_items) - len(open_items)
    if not notes.action_items:
        return ["We have no action items yet."]
    if not open_items:
        return [f"All {count(done, 'action item')} are done."
                if done > 1 else "The one action item is done."]
    first = ("There's one open action item." if len(open_items) == 1
             else f"There are {count(len(open_items), 'open action item')}.")
    lines = [first, *(describe_action(a) for a in open_items)]
    if done:
        lines.append(f"{cap(count(done, 'item'))} already done.")
    return lines


def list_decisions(notes: MeetingNotes) -> list[str]:
    """ "We decided to cut the events line and go with the blue design." """
    if not notes.decisions:
        return ["No decisions recorded yet."]
    texts = [d.text for d in notes.decisions]
    if all(_verb_first(t) for t in texts):
        return [f"We decided to {join_words(texts)}."]
    if len(texts) == 1:
        return [f"One decision: {texts[0]}."]
    return [f"We made {count(len(texts), 'decision')}.", *(f"{cap(t)}." for t in texts)]


def _verb_first(text: str) -> bool:
    return text.split()[0].lower() not in ("the", "a", "an", "we", "our", "it", "this", "that")


def agenda_added(new: list[AgendaItem], first_time: bool) -> list[str]:
    titles = join_words([i.title for i in new])
    if first_time:
        return [f"Great! I'll create agenda items for {titles}."
                if len(new) > 1 else f"Great! I'll add {titles} to the agenda.",
                "I'll also track any decisions and action items we make."]
    return [f"Added {titles} to the agenda."]


def ask_start(item: AgendaItem) -> str:
    return f"Should we start with {with_article(item.title)}?"


def started(item: AgendaItem, new_timebox: bool) -> str:
    if item.timebox_s is not None and new_timebox:
        return f"Starting {with_article(item.title)}, {say_duration(item.timebox_s)} on the clock."
    if item.timebox_s is not None:
        return (f"Starting {with_article(item.title)}. "
                f"We have {say_duration(item.timebox_s)} for it.")
    return f"Starting {with_article(item.title)}."


def moved_on(item: AgendaItem | None) -> str:
    if item is None:
        return "That was the last item on the agenda. Anything else, or shall we wrap up?"
    box = f" We have {say_duration(item.timebox_s)} for it." if item.timebox_s else ""
    return f"Moving on to {item.title}.{box}"


def went_back(item: AgendaItem) -> str:
    return f"Going back to {with_article(item.title)}."


def timebox_set(item: AgendaItem, extra_s: float | None) -> str:
    if extra_s is not None:
        amount = say_duration(extra_s)
        number, _, unit = amount.rpartition(" ")
        more = f"{number} more {unit}" if number and " and " not in amount else f"{amount} more"
        return f"Okay, {more} for {with_article(item.title)}."
    assert item.timebox_s is not None
    if item.status == "active":
        return f"Okay, {say_duration(item.timebox_s)} for {with_article(item.title)}."
    return f"Okay, {with_article(item.title)} will get {say_duration(item.timebox_s)}."


def agenda_status(notes: MeetingNotes) -> list[str]:
    if not notes.agenda:
        return ["We don't have an agenda yet.", ASK_AGENDA]
    done = [i.title for i in notes.agenda if i.status == "done"]
    active = notes.active_item()
    pending = [i.title for i in notes.agenda if i.status == "pending"]
    lines = [f"We have {count(len(notes.agenda), 'item')} on the agenda."]
    if done:
        lines.append(f"Done: {join_words(done)}.")
    if active:
        lines.append(f"We're on {active.title}.")
    if pending:
        lines.append(f"Still to come: {join_words(pending)}.")
    return lines


def recap(notes: MeetingNotes) -> list[str]:
    lines = ["Here's where we are."]
    lines += agenda_status(notes) if notes.agenda else ["No agenda items yet."]
    if notes.decisions:
        lines += list_decisions(notes)
    lines += list_actions(notes)
    return lines


def time_left(item: AgendaItem | None, remaining: float | None, elapsed: float | None) -> str:
    if item is None:
        return "We haven't started an agenda item yet."
    if remaining is None:
        spent = f" We've spent {say_remaining(elapsed)} on it." if elapsed and elapsed >= 1 else ""
        return f"{cap(with_article(item.title))} has no timebox.{spent}"
    if remaining > 0:
        return f"About {say_remaining(remaining)} left for {with_article(item.title)}."
    return f"We're {say_remaining(-remaining)} over on {with_article(item.title)}."


def next_up(notes: MeetingNotes) -> str:
    nxt = notes.next_pending_item()
    if nxt is None:
        return "Nothing else is on the agenda."
    return f"Next up is {nxt.title}."
