"""Cleaning transcribed text before anything reads it.

Speech-to-text (tiny.en in particular) varies in case, punctuation, contractions and how it
writes numbers; understanding should not care. Text is normalised once here: quotes, spacing,
fiscal quarters ("queue three" -> "Q3"), contractions expanded ("I'll" -> "I will") so the
readers elsewhere need one spelling.
"""

from __future__ import annotations

import re

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
    t = re.sub(r"\b(?:a\s+)?quarter\s+of\s+an\s+hour\b", "fifteen minutes", t, flags=re.I)
    t = re.sub(r"\bthree\s+quarters\s+of\s+an\s+hour\b", "forty five minutes", t, flags=re.I)
    for pattern, repl in _CONTRACTIONS:
        t = pattern.sub(repl, t)
    return " ".join(t.split())


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


_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (apostrophes kept: "what's", "lee's")."""
    return _WORD.findall(text.lower())
