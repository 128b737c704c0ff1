"""Agenda items and timeboxes from what people say.

"We need to discuss the Q3 budget and plan the product launch" becomes two items named the way
an agenda reads ("Q3 budget discussion", "product launch planning"): the verb turns into a noun
after the topic. "Let's give it thirty seconds" / "twenty minutes for the launch" become
timeboxes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meetbot.language.text import strip_punctuation
from meetbot.meeting.spoken import find_durations

# verb phrase -> suffix of the title ("" keeps the bare topic)
_VERBS: tuple[tuple[str, str], ...] = (
    ("get an update on", "update"), ("check in on", "check-in"), ("catch up on", "update"),
    ("talk about", ""), ("talk through", ""), ("go over", "review"), ("go through", "review"),
    ("look at", ""), ("look into", ""), ("decide on", "decision"), ("agree on", "decision"),
    ("figure out", ""), ("sort out", ""), ("work on", ""), ("kick off", "kickoff"),
    ("hire for", "hiring"), ("update on", "update"),
    ("discuss", "discussion"), ("cover", ""), ("review", "review"), ("plan", "planning"),
    ("finalize", "finalization"), ("finalise", "finalization"), ("prepare", "preparation"),
    ("prep", "preparation"), ("brainstorm", "brainstorm"), ("approve", "approval"),
    ("prioritize", "prioritization"), ("prioritise", "prioritization"), ("decide", "decision"),
    ("address", ""), ("present", "presentation"), ("demo", "demo"), ("recap", "recap"),
    ("debrief", "debrief"), ("tackle", ""),
)
_VERB_ALT = "|".join(re.escape(v) for v, _ in sorted(_VERBS, key=lambda x: -len(x[0])))
_SUFFIX = dict(_VERBS)

_TRIGGERS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE) for p in (
        r"\b(?:add|put)\s+(?P<rest>.+?)\s+(?:to|on|onto)\s+(?:the\s+|our\s+|today's\s+)?agenda\b",
        r"\bnext on the agenda\s*(?:is|are|we have|:)?\s+(?P<rest>\w.*)",
        r"\b(?:the\s+|our\s+|today's\s+)?agenda(?:\s+for\s+today|\s+today)?\s*"
        r"(?:is|are|includes|has|:|will be|looks like)\s+(?P<rest>\w.*)",
        r"\bon\s+(?:the|our|today's)\s+agenda(?:\s+today)?\s*"
        r"(?:we have|we have got|is|are|:|there is|there are)\s*(?P<rest>\w.*)",
        r"\b(?:topics?|items?)\s+(?:for today\s+)?(?:are|is|:|include)\s+(?P<rest>\w.*)",
        r"\b(?:we\s+(?:also\s+|really\s+)?(?:need to|have to|want to|would like to|"
        r"wanted to|should|will|are going to|must|got to|have got to|hope to|plan to|ought to)"
        r"|I\s+(?:also\s+|really\s+)?(?:want to|would like to|wanted to))"
        rf"\s+(?:also\s+|quickly\s+|first\s+)?(?P<rest>(?:{_VERB_ALT})\b.*)",
        rf"\blet(?:'s| us)\s+(?:also\s+|quickly\s+|then\s+)?(?P<rest>(?:{_VERB_ALT})\b.*)",
        rf"^(?:and\s+|then\s+)?also\s+(?P<rest>(?:{_VERB_ALT})\b.*)",
    )
)
_SPLIT = re.compile(
    r"\s*(?:[,;]|\band then\b|\band also\b|\bas well as\b|\balso\b|\bplus\b|\bthen\b|\band\b)\s*",
    re.IGNORECASE,
)
_LEADING = re.compile(
    r"^(?:(?:we|I)\s+(?:need to|should|have to|will|want to|would like to|also)\s+|"
    r"let(?:'s| us)\s+|maybe\s+|finally\s+|first\s+|firstly\s+|secondly\s+|lastly\s+|"
    r"after that\s+|then\s+|and\s+|also\s+|the\s+|our\s+|a\s+|an\s+|some\s+|how to\s+|"
    r"quickly\s+|discussing\s+|talking about\s+)+",
    re.IGNORECASE,
)
_TRAILING = re.compile(
    r"(?:\s+(?:today|this meeting|first|as well|too|please|thanks|if we have time|"
    r"at the end|afterwards|later|next|please|the agenda|on the agenda|to the agenda))+$",
    re.IGNORECASE,
)
_MAX_WORDS = 8
_PRONOUNS = frozenset("it this that them these those you me us him her".split())


@dataclass(frozen=True)
class AgendaDraft:
    title: str
    timebox_s: float | None = None


def extract_agenda(text: str) -> list[AgendaDraft]:
    """Agenda items announced in ``text`` (empty when it does not announce any)."""
    if re.search(r"\bwhat(?: is|'s| are)?\b[^.?!]*\bagenda\b", text, re.IGNORECASE):
        return []
    for pattern in _TRIGGERS:
        m = pattern.search(text)
        if m:
            rest = re.split(r"(?<=[.!?])\s+", m.group("rest"))[0]
            return agenda_list(rest)
    return []


def agenda_list(text: str) -> list[AgendaDraft]:
    """Items from a bare list ("the budget, hiring and the launch"), verbs turned into nouns."""
    drafts: list[AgendaDraft] = []
    inherited = ""
    for segment in _SPLIT.split(text):
        draft, suffix = _segment(segment, inherited)
        if draft is not None:
            drafts.append(draft)
            inherited = suffix
    return drafts


def _segment(segment: str, inherited: str) -> tuple[AgendaDraft | None, str]:
    seg = strip_punctuation(segment)
    timebox: float | None = None
    durations = find_durations(seg)
    if durations:
        d = durations[0]
        timebox = d.seconds
        before = re.sub(r"\s*\b(?:for|about|around|in|with|taking|take|max|maximum)\s*$", "",
                        seg[: d.start], flags=re.IGNORECASE)
        seg = strip_punctuation(before + " " + seg[d.end :])
    seg = _LEADING.sub("", seg).strip()
    suffix = inherited
    verb = re.match(rf"(?:{_VERB_ALT})\b", seg, re.IGNORECASE)
    if verb:
        suffix = _SUFFIX[verb.group(0).lower()]
        seg = _LEADING.sub("", seg[verb.end() :].strip()).strip()
    seg = strip_punctuation(_TRAILING.sub("", seg))
    words = seg.split()
    if not words or len(words) > _MAX_WORDS or words[0].lower() in _PRONOUNS:
        return None, suffix
    already_named = suffix and words[-1].lower().startswith(suffix[:4])
    suffix_text = f" {suffix}" if suffix and not already_named else ""
    return AgendaDraft(" ".join(words) + suffix_text, timebox), suffix


# ------------------------------------------------------------------------------ timeboxes

_CUES_BEFORE = re.compile(
    r"\b(?:give|giving|timebox|time box|time-box|spend|spending|keep (?:it|this|that)|"
    r"limit|allow|allot|set|cap|take|have|do|max|maximum|only|just|about|for|clock|timer|"
    r"another|extend|add)\b[^.?!]{0,40}$",
    re.IGNORECASE,
)
_CUES_AFTER = re.compile(r"^\s*(?:more\s+|extra\s+)?(?:on the clock|max|tops|for (?:it|this|that)"
                         r"|timebox|each|is enough|should do|should be enough)\b", re.IGNORECASE)
_STRONG_CUES = re.compile(r"\b(?:give|giving|timebox|time box|time-box|on the clock|extend)\b",
                          re.IGNORECASE)
_REF_BEFORE = re.compile(r"\bgive\s+(?P<ref>.+?)\s+$", re.IGNORECASE)
_REF_AFTER = re.compile(r"^\s*(?:for|on|to)\s+(?P<ref>[^.?!,]+)", re.IGNORECASE)
_NOT_REFS = frozenset("it that this us ourselves them me everyone each one each item".split())


@dataclass(frozen=True)
class TimeboxDraft:
    seconds: float
    extra: bool
    """An extension ("two more minutes"): add to the time already allowed."""
    ref: str | None
    """The item it is for, when named ("give the launch ten minutes")."""
    strong: bool
    """Unmistakably a timebox ("give it ...", "timebox ..."), fine to act on unaddressed."""


def extract_timebox(text: str, *, bare: bool = False) -> TimeboxDraft | None:
    """The timebox said in ``text``; ``bare`` accepts a duration with no cue (an answer to
    "how long should we give it?")."""
    for d in find_durations(text):
        before, after = text[: d.start], text[d.end :]
        cued = bool(_CUES_BEFORE.search(before) or _CUES_AFTER.match(after))
        if re.search(r"\b(?:in|within|ago|every|after)\s+$", before, re.IGNORECASE):
            continue
        if re.match(r"^\s*(?:left|remaining|ago|late|over)\b", after, re.IGNORECASE):
            continue
        if not cued and not (bare and len(text.split()) <= len(text[d.start:d.end].split()) + 3):
            continue
        return TimeboxDraft(d.seconds, d.extra, _ref(before, after), bool(
            _STRONG_CUES.search(before[-40:]) or _STRONG_CUES.search(after[:20])))
    return None


def _ref(before: str, after: str) -> str | None:
    m = _REF_BEFORE.search(before)
    if m and m.group("ref").lower().strip() not in _NOT_REFS:
        return m.group("ref")
    m = _REF_AFTER.match(after)
    if m:
        ref = m.group("ref").strip()
        if ref.lower() not in _NOT_REFS and not ref.lower().startswith(("it ", "this ", "that ")):
            return ref
    return None
