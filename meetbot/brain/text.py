"""Cleaning transcribed text before the rules read it.

Speech-to-text (tiny.en in particular) varies in case, punctuation, contractions and how it
writes numbers; the rules should not care. Text is normalised once here: quotes, spacing,
fiscal quarters ("queue three" -> "Q3"), contractions expanded ("I'll" -> "I will") so the
patterns elsewhere need one spelling, and the bot's own name removed from the ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meetbot.meeting.matching import fix_quarters

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"',
                         "\u2014": ", ", "\u2013": "-", "\u2026": "..."})

_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), r) for p, r in (
        (r"\blets\b(?=\s+(?:start|begin|go|move|do|talk|discuss|cover|plan|review|give|also|"
         r"get|keep|take|jump|switch|turn|circle|skip|make|say|not|see|wrap|continue))", "let's"),
        (r"\bwon't\b", "will not"),
        (r"\bcan't\b", "cannot"),
        (r"\b(\w+)n't\b", r"\1 not"),
        (r"\b(i|you|we|they|he|she|it|that|who|there)'ll\b", r"\1 will"),
        (r"\b([A-Za-z]+)'ll\b", r"\1 will"),
        (r"\b(i|you|we|they|he|she)'d\b", r"\1 would"),
        (r"\b(you|we|they)'re\b", r"\1 are"),
        (r"\b(i|you|we|they)'ve\b", r"\1 have"),
        (r"\bi'm\b", "I am"),
        (r"\b(it|that|what|there|here|who|he|she|where|how|everything|nothing)'s\b", r"\1 is"),
        (r"\b([A-Za-z]+)'s\s+(going to|gonna)\b", r"\1 is \2"),
        (r"\bgonna\b", "going to"),
        (r"\bwanna\b", "want to"),
        (r"\bgotta\b", "got to"),
        (r"\bi\b", "I"),
    )
)


def normalize(text: str) -> str:
    """One spelling for the rules: quotes, spaces, Q3, contractions expanded, "I" capitalised."""
    t = text.translate(_QUOTES)
    t = fix_quarters(t)
    for pattern, repl in _CONTRACTIONS:
        t = pattern.sub(repl, t)
    return " ".join(t.split())


_GREETING = (r"(?:hey|hi|hello|hiya|yo|ok|okay|so|um|uh|oh|and|alright|all right|right|well|"
             r"good morning|good afternoon)")


@dataclass(frozen=True)
class Addressed:
    body: str
    """The text without the bot's name and the greeting before it."""
    greeted: bool
    """It opened with "hey"/"hi"/"hello" (a greeting, not just an address)."""
    name_only: bool
    """Nothing but the name ("Assistant?"): the speaker wants attention."""


def name_pattern(bot_name: str) -> str:
    """The bot's name as it may be transcribed ("assistant", "assistants", "assistance")."""
    words = [re.escape(w) for w in bot_name.split()]
    if not words:
        return r"(?!)"
    last = words[-1]
    variants = [last, last + "s"]
    if bot_name.lower().endswith("t"):
        variants.append(last[:-1] + "ce")
    return r"\s+".join([*words[:-1], "(?:" + "|".join(variants) + ")"])


def strip_address(text: str, bot_name: str) -> Addressed:
    """Remove "hey assistant," from the start and ", assistant?" from the end of ``text``."""
    name = name_pattern(bot_name)
    lead = re.compile(rf"^\s*((?:{_GREETING}[\s,!.]+)*)(?:{name})\b[\s,.:!?-]*", re.IGNORECASE)
    trail = re.compile(rf"[\s,]+(?:{name})\s*([.?!]*)\s*$", re.IGNORECASE)
    greeted = bool(re.match(r"^\s*(?:hey|hi|hello|hiya|good (?:morning|afternoon|evening))\b",
                            text, re.IGNORECASE))
    body = text
    m = lead.match(body)
    if m:
        body = body[m.end():]
    body = trail.sub(lambda mm: mm.group(1), body)
    body = body.strip(" ,")
    name_only = not re.search(r"\w", body)
    return Addressed(body, greeted, name_only)


def sentences(text: str) -> list[str]:
    """Split on sentence punctuation; unpunctuated transcripts come back as one sentence."""
    parts = re.split(r"(?<=[.!?;])\s+", text.strip())
    return [p.strip() for p in parts if re.search(r"\w", p)]


def strip_punctuation(text: str) -> str:
    return text.strip().strip(" .,!?;:-\"'").strip()


def cap(text: str) -> str:
    """Upper-case the first letter only ("product launch planning" -> "Product launch ...")."""
    return text[:1].upper() + text[1:] if text else text


def join_words(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]
