"""Pulling notes out of what people say: action items, decisions, free notes.

Pure functions over normalised text (see :mod:`meetbot.brain.text`): no state, no punctuation
required. They err on the side of missing an item rather than inventing one, because a wrong
action item read back to the room costs more trust than a missed one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import tzinfo

from meetbot.language.names import NameBook
from meetbot.language.text import strip_punctuation
from meetbot.meeting.dates import DueDate, find_due

_NOT_OWNERS = frozenset(
    """we you they he she it this that these those there here everyone everybody someone
    somebody anyone anybody nobody everything something nothing who which what where when why
    how then so and but or also maybe perhaps probably i'm the a an all both each either
    neither marketing sales finance engineering design product team which whoever one none
    people folks guys time money budget plan it'll let if because since though as what's
    well yes yeah no okay ok sure great good right first next last today tomorrow""".split()
)

_NON_TASK_VERBS = frozenset(
    """be been being have has had think guess say see hear know bet wait need want like love
    hate mention agree admit assume suppose try stop pass leave sit stand listen hold watch
    feel hope believe probably just lose win go come""".split()
)
"""First words that make "I will ..." a remark, not a commitment ("I'll be honest")."""

_IMMEDIATE_VERBS = _NON_TASK_VERBS | frozenset(
    """repeat unmute mute speak explain clarify walk show tell talk help confirm""".split()
)
"""First words that make "Dana, can you ..." a request for right now ("can you repeat that")."""

_MODALS = (
    r"(?:will|shall|is going to|are going to|am going to|going to|needs to|need to|has to|"
    r"have to|should|is to|agreed to|volunteered to|offered to|promised to)"
)

_SUBJECT_MODAL = re.compile(
    rf"\b(?P<subj>[A-Za-z][\w-]*(?:\s+and\s+[A-Za-z][\w-]*)?)\s+(?P<modal>{_MODALS})\s+"
    r"(?:also\s+|then\s+|just\s+|probably\s+|definitely\s+|please\s+|go ahead and\s+|"
    r"try to\s+|make sure to\s+)*(?P<rest>\w.*)",
    re.IGNORECASE,
)
_LET_ME = re.compile(r"\blet me\s+(?P<rest>\w.*)", re.IGNORECASE)
_EXPLICIT = re.compile(
    r"\b(?:action items?(?:\s+(?:for|is|number \w+))?\s*[:,-]?|to-?do\s*:)\s*(?P<rest>\w.*)",
    re.IGNORECASE,
)
_QUERY_WORDS = re.compile(r"\b(?:what|which|list|read|any|how many|remind|recap|tell|who)\b",
                          re.IGNORECASE)
_EXPLICIT_OWNER = re.compile(
    r"^(?:for\s+)?(?P<subj>[A-Za-z][\w-]*)\s*(?:[:,-]|\s+(?:to|will|should|needs to|is going to))"
    r"\s+(?P<rest>\w.*)",
    re.IGNORECASE,
)
_DIRECTED_LEAD = re.compile(
    r"^(?:so\s+|and\s+|okay\s+|ok\s+)?(?P<name>[A-Za-z][\w-]*)[\s,]+(?:can|could|would|will)\s+"
    r"you\s+(?:please\s+)?(?P<rest>\w.*)",
    re.IGNORECASE,
)
_DIRECTED_TRAIL = re.compile(
    r"\b(?:can|could|would|will)\s+you\s+(?:please\s+)?(?P<rest>\w.*?)[\s,]+(?P<name>[A-Za-z][\w-]*)"
    r"\s*[?.!]*$",
    re.IGNORECASE,
)
_DIRECTED_BARE = re.compile(
    r"^(?:so\s+|and\s+|okay\s+|ok\s+)?(?:can|could|would)\s+you\s+(?:please\s+)?(?P<rest>\w.*)",
    re.IGNORECASE,
)
_REMIND = re.compile(
    r"\bremind\s+(?P<subj>[A-Za-z][\w-]*)\s+to\s+(?P<rest>\w.*)", re.IGNORECASE
)
_NEXT_SUBJECT = rf"(?=[A-Za-z][\w-]*\s+{_MODALS}\b)"
_CLAUSE_SPLIT = re.compile(
    rf",?\s+(?:and|but|so|then|and then|while)\s+{_NEXT_SUBJECT}|[;,]\s+{_NEXT_SUBJECT}",
    re.IGNORECASE,
)
_TRAILING_FILLER = re.compile(
    r"(?:[\s,]+(?:okay|ok|right|then|as well|too|for us|if that is okay|if that works|"
    r"please|I think|I guess|and|so|but))+\s*$",
    re.IGNORECASE,
)
_VAGUE_OBJECTS = frozenset("it that this them those these so one".split())


@dataclass(frozen=True)
class ActionDraft:
    owner: str
    text: str
    due: DueDate | None


@dataclass(frozen=True)
class Speaking:
    """Who said the text and to whom it may be directed, for resolving "I" and "you"."""

    speaker: str
    names: NameBook
    wall_time: float
    tz: tzinfo | None = None
    addressed_to_bot: bool = False
    utterance: str = ""
    """The utterance as transcribed, kept as the source of what is taken from it."""


def extract_action_items(sentence: str, ctx: Speaking) -> list[ActionDraft]:
    """Action items in one sentence ("Lee will draft X by Friday", "I'll send Y tomorrow",
    "action item: Dana to book the room", "Dana, can you book the room?")."""
    explicit = _EXPLICIT.search(sentence)
    if explicit and not _QUERY_WORDS.search(sentence[: explicit.start("rest")]):
        draft = _explicit(explicit.group("rest"), ctx)
        return [draft] if draft else []
    drafts: list[ActionDraft] = []
    for clause in _clauses(sentence):
        draft = _from_clause(clause, ctx)
        if draft is not None:
            drafts.append(draft)
    return drafts


def _clauses(sentence: str) -> list[str]:
    """Split before each new "<someone> will ..." ("Lee will draft X and I will review it"),
    but not inside a joint subject ("Dana and Lee will ...")."""
    pieces: list[str] = []
    start = 0
    for m in _CLAUSE_SPLIT.finditer(sentence):
        if len(sentence[start : m.start()].split()) >= 2:
            pieces.append(sentence[start : m.start()])
            start = m.end()
    pieces.append(sentence[start:])
    return pieces


def _from_clause(clause: str, ctx: Speaking) -> ActionDraft | None:
    if clause.rstrip().endswith("?") and not re.search(r"\byou\b", clause, re.IGNORECASE):
        return None  # "will Lee send it?" is a question, not a commitment
    remind = _REMIND.search(clause)
    if remind and ctx.addressed_to_bot:
        owner = _owner(remind.group("subj"), ctx, allow_me=True)
        if owner:
            return _draft(owner, remind.group("rest"), ctx)
    for m in _subject_modals(clause):
        if _negated(clause[: m.start("modal")]) or re.match(
            r"not\b", clause[m.end("modal"):].strip(), re.IGNORECASE
        ):
            continue
        starts_sentence = not re.search(r"\w", clause[: m.start("subj")])
        owner = _owner(m.group("subj"), ctx, unknown_ok=not starts_sentence)
        if owner is None:
            continue
        if re.search(r"\b(?:if|whether|when|unless)\s+$", clause[: m.start()], re.IGNORECASE):
            continue
        draft = _draft(owner, m.group("rest"), ctx)
        if draft:
            return draft
    let_me = _LET_ME.search(clause)
    if let_me:
        draft = _draft(ctx.speaker, let_me.group("rest"), ctx)
        if draft:
            return draft
    return _directed(clause, ctx)


def _subject_modals(clause: str) -> list[re.Match[str]]:
    """Every "<subject> will ..." reading of the clause, trying each word as the subject (a
    regex scan alone would stop at the first, "launch and Lee will ...")."""
    found: list[re.Match[str]] = []
    pos = 0
    while True:
        m = _SUBJECT_MODAL.search(clause, pos)
        if m is None:
            return found
        found.append(m)
        nxt = re.search(r"\s", clause[m.start("subj"):])
        if nxt is None:
            return found
        pos = m.start("subj") + nxt.end()


def _directed(clause: str, ctx: Speaking) -> ActionDraft | None:
    """ "Dana, can you book the room?" -> Dana; bare "can you ..." to the one other person."""
    for pattern in (_DIRECTED_LEAD, _DIRECTED_TRAIL):
        m = pattern.search(clause)
        if m and pattern is _DIRECTED_TRAIL and "," not in clause[m.end("rest"): m.start("name")]:
            if re.search(r"\b(?:to|with|for|from|by|at|about|and|of|on)$", m.group("rest"),
                         re.IGNORECASE):
                continue  # "can you send it to Lee": Lee is the recipient
        if m:
            owner = _owner(m.group("name"), ctx, allow_me=False, allow_i=False)
            if owner and owner != ctx.speaker:
                return _draft(owner, m.group("rest"), ctx, directed=True)
    m = _DIRECTED_BARE.search(clause)
    if m and not ctx.addressed_to_bot:
        others = ctx.names.others(ctx.speaker)
        if len(others) == 1:
            return _draft(others[0], m.group("rest"), ctx, directed=True)
    return None


def _explicit(rest: str, ctx: Speaking) -> ActionDraft | None:
    m = _EXPLICIT_OWNER.match(rest)
    if m:
        owner = _owner(m.group("subj"), ctx, allow_me=True)
        if owner:
            return _draft(owner, m.group("rest"), ctx, strict=False)
    for draft in (_from_clause(rest, ctx),):
        if draft:
            return draft
    return _draft("", rest, ctx, strict=False)


def _negated(before: str) -> bool:
    return bool(re.search(r"\b(?:not|never|no one|nobody)\s*$", before, re.IGNORECASE))


def _owner(word: str, ctx: Speaking, *, allow_me: bool = False, allow_i: bool = True,
           unknown_ok: bool = True) -> str | None:
    """The owner a subject word names: "I" is the speaker, known names fuzzily, else (when
    ``unknown_ok``) a capitalised word that is not a common word: someone not heard yet.

    A capitalised word that opens a sentence is no sign of a name ("Pricing will change next
    quarter"), so there only known names count."""
    parts = [p for p in re.split(r"\s+and\s+", word.strip()) if p]
    owners: list[str] = []
    for part in parts:
        low = part.lower()
        if low == "i" and allow_i:
            owners.append(ctx.speaker)
            continue
        if low == "me" and allow_me:
            owners.append(ctx.speaker)
            continue
        if low in _NOT_OWNERS or low in ("i", "me"):
            return None
        known = ctx.names.match(part)
        if known:
            owners.append(known)
        elif unknown_ok and part[:1].isupper() and len(part) > 1:
            owners.append(part)
        else:
            return None
    if not owners:
        return None
    return owners[0] if len(owners) == 1 else " and ".join(owners)


def _draft(owner: str, rest: str, ctx: Speaking, *, directed: bool = False,
           strict: bool = True) -> ActionDraft | None:
    text = rest
    due = find_due(text, ctx.wall_time, ctx.tz)
    if due is not None:
        text = text[: due.start] + " " + text[due.end :]
    text = re.sub(r"[?!.;]+(?:\s|$)", " ", text)
    text = strip_punctuation(" ".join(text.split()))
    text = _TRAILING_FILLER.sub("", text)
    text = strip_punctuation(text)
    words = text.split()
    if not words:
        return None
    first = words[0].lower()
    if strict and (first in (_IMMEDIATE_VERBS if directed else _NON_TASK_VERBS)
                   or len(words) < 2):
        return None
    if directed and re.search(r"\bscreen\b", text, re.IGNORECASE):
        return None  # "can you share your screen"
    if strict and len(words) == 2 and words[1].lower() in _VAGUE_OBJECTS and (
        due is None or first in ("do", "handle", "take", "get", "try")
    ):
        return None  # "I'll do it": nothing anyone could follow up on
    if owner == ctx.speaker:
        text = re.sub(r"\bmy\b", "their", text, flags=re.IGNORECASE)
        text = re.sub(r"\bmyself\b", "themselves", text, flags=re.IGNORECASE)
    if directed:
        text = re.sub(r"\byour\b", "their", text, flags=re.IGNORECASE)
    if owner != ctx.speaker and ctx.speaker:
        text = re.sub(r"\bme\b", ctx.speaker, text, flags=re.IGNORECASE)
        if not directed:
            text = re.sub(r"\bmy\b", f"{ctx.speaker}'s", text, flags=re.IGNORECASE)
    return ActionDraft(owner, text, due)


# ------------------------------------------------------------------------------ decisions

_DECISIONS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE) for p in (
        r"\b(?:we|everyone|everybody|all of us|the team)\s+(?:have\s+|all\s+|just\s+|finally\s+)*"
        r"(?:agreed|decided|agree|settled)\b(?:\s+(?:that|to|on|upon))?\s+(?P<x>\w.*)",
        r"\b(?:it is|that is|so it is|so that is)\s+(?:agreed|decided|settled)\b[\s,:]*"
        r"(?:that\s+|then\s+|we will\s+)?(?P<x>\w.*)",
        r"\b(?:final\s+)?decision\s*(?::|-|is|was)\s*(?:to\s+|that\s+)?(?P<x>\w.*)",
        r"\b(?:agreed|decided)\s*:\s*(?P<x>\w.*)",
        r"\b(?P<x>(?:let's|let us|we will|we are|we are going to|we're)\s+go(?:ing)?\s+with\s+.+)",
    )
)
_DECISION_QUESTION = re.compile(
    r"\b(?:do|did|can|should|could|shall|have|what|when|if|whether|haven't|not)\s+"
    r"(?:we\s+|you\s+|everyone\s+)?(?:all\s+)?(?:agree|decide|agreed|decided)", re.IGNORECASE
)
_DECISION_LEAD = re.compile(
    r"^(?:that\s+|to\s+|on\s+|we\s+(?:will|should|are going to|would)\s+|we\s+)+", re.IGNORECASE
)


def extract_decision(sentence: str) -> str | None:
    """The decision in "so we agreed to cut the events line" -> "cut the events line"."""
    if _DECISION_QUESTION.search(sentence) or sentence.rstrip().endswith("?"):
        return None
    for pattern in _DECISIONS:
        m = pattern.search(sentence)
        if not m:
            continue
        text = m.group("x")
        text = re.sub(r"^(?:let's|let us|we will|we are going to|we are|we're)\s+"
                      r"go(?:ing)?\s+with", "go with", text, flags=re.IGNORECASE)
        text = _DECISION_LEAD.sub("", text)
        text = strip_punctuation(_TRAILING_FILLER.sub("", strip_punctuation(text)))
        if len(text.split()) >= 2 or (text and pattern is _DECISIONS[2]):
            return text
    return None


# ------------------------------------------------------------------------------ free notes

_NOTE_EXPLICIT = re.compile(
    r"\b(?:make a note|take a note|note for the record|for the record|please note|note down|"
    r"write down|jot down|note)\s*(?:that|of|:|,|-)?\s*(?P<x>\w.*)",
    re.IGNORECASE,
)
_NOTE_ADDRESSED = re.compile(r"^(?:note that|remember that|keep in mind that)\s+(?P<x>\w.*)",
                             re.IGNORECASE)


def extract_note(sentence: str, addressed: bool) -> str | None:
    """A free note: "make a note that the numbers are preliminary" (any time), "note that ..."
    only when said to the bot (in conversation it is just a figure of speech)."""
    m = _NOTE_ADDRESSED.search(sentence) if addressed else None
    if m is None:
        strong = re.search(r"\b(?:make a note|take a note|for the record|note down|jot down|"
                           r"write down|note\s*:)", sentence, re.IGNORECASE)
        if strong is None:
            return None
        m = _NOTE_EXPLICIT.search(sentence, strong.start())
    if m is None:
        return None
    text = strip_punctuation(m.group("x"))
    return text if len(text.split()) >= 2 else None
