"""Loose matching of spoken references against written titles.

People refer to agenda items by a fragment ("the budget", "launch") and speech-to-text mangles
words ("Q3" heard as "queue three", "planning" vs "plan"), so the notes and the brains match on
lightly stemmed content words rather than exact strings. One place, so the notes model, the
rule brain and any LLM tool calls agree on what "the budget" refers to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

_QUARTER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "for": "4", "to": "2"}
_QUARTER_RE = re.compile(
    r"\b(?:q|queue|cue|kyu)\.?[\s-]*(one|two|three|four|1|2|3|4)\b", re.IGNORECASE
)
_QUARTER_TO_RE = re.compile(
    r"\b(?:q|queue|cue)\.?[\s-]*(to|for)\b"
    r"(?=\s+(?:budget|plan|goals?|roadmap|numbers|results|targets?|okrs?|review|forecast))",
    re.IGNORECASE,
)

STOPWORDS = frozenset(
    """a an the our your their my this that these those of for to on in at with and or but so
    about over into from by it its is are be we us you i me let lets let's s can could should
    would will shall just also then now first next last today item items topic topics agenda
    some any all please okay ok yeah yes um uh like""".split()
)


def fix_quarters(text: str) -> str:
    """Write fiscal quarters as "Q3" however they were transcribed ("q three", "cue 3")."""

    def repl(m: re.Match[str]) -> str:
        digit = m.group(1).lower()
        return "Q" + _QUARTER_WORDS.get(digit, digit)

    return _QUARTER_TO_RE.sub(repl, _QUARTER_RE.sub(repl, text))


def stem(word: str) -> str:
    """A crude stem so "planning", "plans" and "plan" compare equal."""
    w = word.lower().strip("'")
    if w.endswith("'s"):
        w = w[:-2]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            if len(w) >= 2 and w[-1] == w[-2] and w[-1] not in "ls":
                w = w[:-1]
            return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def content_words(text: str) -> list[str]:
    """Stemmed words that carry meaning, in order (articles and fillers dropped)."""
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", fix_quarters(text).lower())
    return [stem(w) for w in words if w not in STOPWORDS]


T = TypeVar("T")


def best_title_match(ref: str, candidates: Sequence[tuple[T, str]]) -> T | None:
    """The candidate whose title shares the most content words with ``ref``.

    Ties go to the earlier candidate. Returns None when nothing shares a word, so callers can
    tell "no such item" from a weak match.
    """
    ref_words = set(content_words(ref))
    if not ref_words:
        return None
    best: T | None = None
    best_score = (0, 0.0)
    for value, title in candidates:
        title_words = set(content_words(title))
        if not title_words:
            continue
        overlap = len(ref_words & title_words)
        if overlap == 0:
            continue
        score = (overlap, overlap / len(title_words))
        if score > best_score:
            best, best_score = value, score
    return best


def normalized_title(text: str) -> str:
    """A comparison key for duplicate detection: content words joined by spaces."""
    return " ".join(content_words(text))


def same_title(a: str, b: str) -> bool:
    return normalized_title(a) == normalized_title(b)


def any_word_in(text: str, words: Iterable[str]) -> bool:
    lowered = f" {text.lower()} "
    return any(f" {w} " in lowered for w in words)
