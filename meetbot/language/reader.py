"""The language layer's one entry point: an utterance in, what it meant out.

``Reader.read`` finds whether the bot is called (meetbot/language/calling.py), asks the
classifier which intents the rest carries (meetbot/language/intents.py) and fills each
intent's slots (meetbot/language/slots.py), resolving people against the room's participants
and dates against the meeting's clock. It says what was meant and nothing about what to do:
that is the brain's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from meetbot.language import slots
from meetbot.language.calling import BotName, Call
from meetbot.language.intents import Example, IntentClassifier, features, mask, shared_classifier
from meetbot.language.meaning import INTENTS, Act, Context, Meaning, PendingRequest
from meetbot.language.names import NameBook
from meetbot.language.text import normalize, words
from meetbot.meeting.dates import find_due

FALLBACK_THRESHOLD = 0.3
"""For an utterance said to the bot where no intent reaches the classifier's threshold: the
likeliest is taken from this probability up (chosen on the dev split)."""

_YES_NO_OPENERS = frozenset(
    "should shall do does can could would will are is want ready shall okay ok".split()
)


def context_tags(ctx: Context, call: Call) -> list[str]:
    """What the bot just did and how it was named, as tokens for the classifier (why the
    agenda and the last note are not among them: meetbot/language/intents.py)."""
    tags: list[str] = []
    if ctx.bot_asked:
        first = words(ctx.bot_asked)[:1]
        tags.append("askedyesno" if first and first[0] in _YES_NO_OPENERS else "askedopen")
    if ctx.pending_request is not None:
        same = ctx.pending_request.owner.lower() == ctx.speaker.lower()
        tags.append("pendingmine" if same else "pendingother")
    if call.vocative:
        tags.append("called")
    elif call.mentioned:
        tags.append("mention")
    return tags


def feature_text(body: str, ctx: Context, call: Call, names: NameBook, bot_name: str) -> str:
    """What the classifier reads: ``body`` masked, behind the context's tags. One function
    for training and reading, so both see the same input."""
    masked = mask(body, names=[w for n in names.names for w in n.split()],
                  bot_words=words(bot_name), wall_time=ctx.wall_time)
    return features(masked, context_tags(ctx, call))


class Reader:
    """Reads utterances for one meeting: the bot's name and the people in the call."""

    def __init__(self, bot_name: str = "assistant", *, wake_phrases: tuple[str, ...] = (),
                 participants: Iterable[str] = (),
                 classifier: IntentClassifier | None = None) -> None:
        self.bot = BotName(bot_name, wake_phrases)
        self.names = NameBook(participants, exclude=[bot_name])
        self._classifier = classifier

    @property
    def classifier(self) -> IntentClassifier:
        if self._classifier is None:
            self._classifier = shared_classifier()
        return self._classifier

    def add_participant(self, name: str) -> None:
        self.names.add(name)

    def read(self, text: str, ctx: Context, *, guess: bool = True,
             addressed: bool = False) -> Meaning:
        """What ``text`` (one utterance, as transcribed) meant, said in ``ctx``.

        With ``guess`` (the default), an utterance said to the bot that no intent reaches the
        threshold for gets the likeliest one anyway; without it only confident readings count
        (deciding whether an utterance is meant for the bot at all must not guess).
        ``addressed``: the utterance is known to be meant for the bot (a follow-up, a call
        with one person), so it may be guessed at even without a vocative."""
        for name in ctx.participants:
            self.names.add(name)
        if ctx.speaker:
            self.names.add(ctx.speaker)
        call = self.bot.read(text)
        if call.tentative_body is not None:
            as_call = Call(True, True, call.tentative_body, None, call.greeted)
            meaning = self._read(as_call, ctx, guess=False)
            if meaning.has(*BOT_DIRECTED):
                return meaning
        return self._read(call, ctx, guess=guess, addressed=addressed)

    def _read(self, call: Call, ctx: Context, *, guess: bool = True,
              addressed: bool = False) -> Meaning:
        body = normalize(call.body)
        if not re.search(r"\w", body):
            return Meaning(call, (), body)
        feats = self.feature_text(body, ctx, call)
        predicted = self.classifier.predict(feats)
        if not predicted and guess and (call.vocative or ctx.bot_asked or addressed):
            # Said to the bot, so it asks something: the likeliest intent, unless none is
            # even remotely likely (then the bot says it did not understand).
            probs = self.classifier.probabilities(feats)
            best = max(probs, key=lambda k: probs[k])
            if probs[best] >= FALLBACK_THRESHOLD:
                predicted = [(best, probs[best])]
        acts: list[Act] = []
        for intent in _exclusive(predicted):
            acts.extend(self._fill(intent, body, ctx))
        return Meaning(call, tuple(_in_order(acts, body)), body)

    def feature_text(self, body: str, ctx: Context, call: Call) -> str:
        return feature_text(body, ctx, call, self.names, self.bot.name)

    # ----------------------------------------------------------------------------- slots

    def _fill(self, intent: str, body: str, ctx: Context) -> list[Act]:
        """The act(s) for ``intent`` with slots read from ``body``; none when the intent
        cannot stand without an argument that is not there."""
        if intent == "agenda.add":
            entries = slots.agenda_entries(body)
            if not entries:
                return []
            listed: dict[str, Any] = {"items": [title for title, _ in entries]}
            if any(seconds is not None for _, seconds in entries):
                listed["timeboxes"] = [seconds for _, seconds in entries]
            return [Act(intent, listed)]
        if intent in ("agenda.start", "agenda.goto", "agenda.skip"):
            ref = slots.item_ref(body, ctx)
            if intent == "agenda.skip" and ref is not None and ref == ctx.active_item and \
                    re.search(r"\b(?:this|it|that|current)\b", body, re.IGNORECASE):
                ref = None
            if intent == "agenda.goto" and ref is None:
                return []
            return [Act(intent, {"item": ref})]
        if intent in ("time.set", "time.extend"):
            tb = slots.timebox(body, ctx)
            if tb is None:
                return [Act(intent, {"seconds": None})] if intent == "time.extend" else []
            if intent == "time.extend" or (tb.extra and tb.item is None):
                # "give it two more minutes": more time for what is on, whatever the
                # classifier made of the verb
                return [Act("time.extend", {"seconds": tb.seconds})]
            return [Act(intent, {"seconds": tb.seconds, "item": tb.item})]
        if intent == "action.add":
            acts = []
            for clause in slots.action_clauses(body):
                part = slots.action(clause, ctx, self.names)
                if part is not None:
                    acts.append(Act(intent, {
                        "owner": part.owner, "task": part.task,
                        "due": part.due.date if part.due else None,
                        "due_text": part.due.text if part.due else None}))
            if len(acts) > 1:
                return acts
        if intent in ("action.add", "action.request"):
            found = slots.action(body, ctx, self.names, request=intent == "action.request")
            if found is None:
                if intent == "action.request":
                    return [Act(intent, {"owner": slots.owner_in(body, ctx, self.names),
                                         "task": slots.clean(body), "due": None})]
                return []
            return [Act(intent, {"owner": found.owner, "task": found.task,
                                 "due": found.due.date if found.due else None,
                                 "due_text": found.due.text if found.due else None})]
        if intent == "action.complete":
            return [Act(intent, {"task": slots.completed_task(body)})]
        if intent == "correction.due":
            due = find_due(body, ctx.wall_time, ctx.tz)
            if due is None:
                return []  # a new due date is what this correction is
            return [Act(intent, {"due": due.date, "due_text": due.text})]
        if intent == "correction.owner":
            owner = slots.owner_in(body, ctx, self.names)
            return [Act(intent, {"owner": owner})] if owner else []
        if intent == "decision.add":
            return [Act(intent, {"text": slots.decision(body) or slots.clean(body)})]
        if intent == "note.add":
            return [Act(intent, {"text": slots.note_text(body) or slots.clean(body)})]
        if intent == "ask.actions":
            owner = slots.owner_in(body, ctx, self.names)
            if owner is None and re.search(r"\b(?:my|me|I)\b", body):
                owner = ctx.speaker or None
            return [Act(intent, {"owner": owner})]
        if intent == "ask.owner":
            return [Act(intent, {"task": slots.asked_task(body)})]
        return [Act(intent, {})]


BOT_DIRECTED = frozenset(
    i for i in INTENTS if not i.startswith(("action.add", "decision.", "note.", "action.accept",
                                             "action.complete"))
)
"""Intents that only make sense said to the bot: a name before them is a call."""

_EXCLUSIVE_GROUPS = (
    ("agenda.start", "agenda.next", "agenda.previous", "agenda.goto", "agenda.skip"),
    ("agenda.ask", "agenda.ask_next", "time.left", "time.used"),
    ("time.set", "time.extend"),
    ("answer.yes", "answer.no"),
    ("ask.recap", "ask.decisions", "ask.actions", "ask.owner"),
    ("action.add", "action.request", "action.accept"),
    ("correction.due", "correction.owner", "correction.remove"),
    ("meta.presence", "meta.take_notes", "meta.help"),
)
"""Intents one utterance rarely carries together: of each group, only the likeliest is kept
(a question about time is about time left or time used, seldom both)."""


_CONTRADICTIONS = frozenset({frozenset(("answer.no", "action.accept"))})
"""Pairs that cannot both be meant: of a "no" to a request, the likelier reading stands."""
_QUESTIONS = frozenset({"ask.recap", "ask.decisions", "ask.actions", "ask.owner", "agenda.ask",
                        "agenda.ask_next", "time.left", "time.used"})


def _exclusive(predicted: list[tuple[str, float]]) -> list[str]:
    kept: list[str] = []
    taken: set[int] = set()
    asks = False
    for intent, _ in predicted:  # most likely first
        if intent in _QUESTIONS:
            asks = True
        elif intent.startswith("answer.") and asks:
            # A question asked back ("how much time is left?" to "shall we move on?") is
            # not a yes or a no, however much the bot's question makes one likely.
            continue
        if any(frozenset((intent, k)) in _CONTRADICTIONS for k in kept):
            continue
        group = next((i for i, g in enumerate(_EXCLUSIVE_GROUPS) if intent in g), None)
        if group is not None:
            if group in taken:
                continue
            taken.add(group)
        kept.append(intent)
    return kept


def _in_order(acts: list[Act], body: str) -> list[Act]:
    """Acts in the order they were said, as far as their slots show it."""
    low = body.lower()

    def position(act: Act) -> int:
        for value in act.slots.values():
            if isinstance(value, str) and value and (i := low.find(value.lower()[:12])) >= 0:
                return i
            if isinstance(value, list) and value and isinstance(value[0], str):
                if (i := low.find(value[0].lower()[:12])) >= 0:
                    return i
        return -1 if act.intent.startswith("answer.") else 0

    return sorted(acts, key=position)


# ------------------------------------------------------------------------- corpus records

CORPUS_NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
"""When every corpus utterance is said (benchmarks/corpus/README.md)."""


def record_context(record: dict[str, Any]) -> Context:
    """The reading context of one labeled corpus record."""
    c = record.get("context") or {}
    pending = c.get("pending_request")
    last = c.get("last_note")
    return Context(
        speaker=record.get("speaker", ""),
        participants=tuple(record.get("participants", [])),
        bot_asked=c.get("bot_asked"),
        agenda=tuple(c.get("agenda") or ()),
        active_item=c.get("active_item"),
        pending_request=PendingRequest(pending.get("owner", ""), pending.get("task", ""),
                                       pending.get("due")) if pending else None,
        last_note_kind=(last or {}).get("kind") if last else None,
        wall_time=CORPUS_NOW.timestamp(),
        tz=UTC,
    )


def example_of(record: dict[str, Any]) -> Example:
    """A corpus record as a training example for the classifier."""
    bot_name = record.get("bot_name", "assistant")
    names = NameBook(record.get("participants", []), exclude=[bot_name])
    ctx = record_context(record)
    call = BotName(bot_name).read(record["text"])
    feats = feature_text(normalize(call.body), ctx, call, names, bot_name)
    return Example(feats, tuple(sorted(a["intent"] for a in record.get("acts", []))))
