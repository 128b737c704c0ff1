"""Numbers and durations as people say them, both ways.

The bot speaks through TTS, so "10 s" must come out as "ten seconds"; and it hears through
speech-to-text, which writes "thirty seconds" one day and "30 seconds" or "30 sec" the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

WORD_VALUES: dict[str, int] = {w: i for i, w in enumerate(_ONES)}
WORD_VALUES.update({w: 10 * i for i, w in enumerate(_TENS) if w})

ORDINALS: dict[str, int] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}


def number_words(n: int) -> str:
    """0 <= n < 1,000,000 in words: 42 -> "forty-two"."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" and {number_words(rest)}" if rest else "")
    if n < 1_000_000:
        thousands, rest = divmod(n, 1000)
        tail = "" if not rest else (" and " if rest < 100 else " ") + number_words(rest)
        return f"{number_words(thousands)} thousand{tail}"
    return str(n)


def _unit(n: int, word: str) -> str:
    return f"{number_words(n)} {word}{'' if n == 1 else 's'}"


def say_duration(seconds: float) -> str:
    """A duration as spoken: 30 -> "thirty seconds", 90 -> "ninety seconds", 1200 -> "twenty
    minutes", 150 -> "two and a half minutes". Long odd durations round to the minute."""
    s = max(0, round(seconds))
    if s < 60:
        return _unit(s, "second")
    if s >= 3600:
        hours, rest = divmod(s, 3600)
        minutes = round(rest / 60)
        if minutes == 60:
            hours, minutes = hours + 1, 0
        if minutes == 0:
            return _unit(hours, "hour")
        if minutes == 30:
            return f"{number_words(hours)} and a half hours" if hours > 1 else "an hour and a half"
        return f"{_unit(hours, 'hour')} and {_unit(minutes, 'minute')}"
    if s % 60 == 0:
        return _unit(s // 60, "minute")
    if s < 120:
        return _unit(s, "second")
    minutes, rest = divmod(s, 60)
    if rest == 30:
        return f"{number_words(minutes)} and a half minutes"
    return _unit(round(s / 60), "minute")


def round_remaining(seconds: float) -> float:
    """Round a remaining time the way a person would say it (9.7 s -> 10 s, 7 min 40 -> 8 min)."""
    r = max(0.0, seconds)
    if r < 10:
        return float(max(1, round(r)))
    if r < 60:
        return float(5 * round(r / 5))
    if r < 120:
        return float(30 * round(r / 30))
    return float(60 * round(r / 60))


def say_remaining(seconds: float) -> str:
    return say_duration(round_remaining(seconds))


# ----------------------------------------------------------------------------------- parsing

_NUM_WORD = "|".join(sorted([*WORD_VALUES, "hundred", "thousand"], key=len, reverse=True))
NUMBER_PATTERN = (
    rf"(?:\d+(?:\.\d+)?|(?:{_NUM_WORD})(?:[\s-]+(?:and[\s-]+)?(?:{_NUM_WORD}))*"
    r"|a\s+couple(?:\s+of)?|a\s+few|an?)"
)
_NUMBER_RE = re.compile(rf"^{NUMBER_PATTERN}$", re.IGNORECASE)


def parse_number(text: str) -> float | None:
    """"twenty five" / "twenty-five" / "25" / "a couple of" / "an" -> a number, else None."""
    t = " ".join(text.lower().replace("-", " ").split())
    if not t or not _NUMBER_RE.match(t):
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return float(t)
    if t in ("a", "an"):
        return 1.0
    if t.startswith("a couple"):
        return 2.0
    if t == "a few":
        return 3.0
    total = 0
    current = 0
    for w in t.split():
        if w == "and":
            continue
        if w == "hundred":
            current = max(current, 1) * 100
        elif w == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            current += WORD_VALUES[w]
    return float(total + current)


_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
                 "h": 3600, "hr": 3600, "hour": 3600}
_UNIT = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|s|m|h)"
_DURATION_RE = re.compile(
    r"\b(?:"
    r"(?P<half>half\s+(?:an?\s+)?(?P<half_unit>hour|minute))"
    rf"|(?P<num>{NUMBER_PATTERN})(?P<half1>\s+and\s+a\s+half)?"
    r"(?:[\s-]*|(?<=\d))(?P<more>(?:more|extra|additional)\s+)?"
    rf"(?P<unit>{_UNIT})(?P<half2>\s+and\s+a\s+half)?"
    r")\b",
    re.IGNORECASE,
)
_EXTRA_BEFORE_RE = re.compile(r"\b(?:another|more|extra|additional)\s+$", re.IGNORECASE)


@dataclass(frozen=True)
class DurationMatch:
    seconds: float
    start: int
    end: int
    extra: bool
    """Said as an extension: "two more minutes", "another five minutes"."""


def _unit_seconds(unit: str) -> int:
    u = unit.lower()
    u = u[:-1] if u.endswith("s") and len(u) > 1 else u
    return _UNIT_SECONDS[u]


def find_durations(text: str) -> list[DurationMatch]:
    """Every duration in ``text``, adjacent parts merged ("one minute and thirty seconds")."""
    found: list[DurationMatch] = []
    for m in _DURATION_RE.finditer(text):
        if m.group("half"):
            seconds = 0.5 * _UNIT_SECONDS[m.group("half_unit").lower()]
        else:
            num_text = m.group("num")
            unit = m.group("unit")
            if len(unit) == 1 and not num_text[-1].isdigit():
                continue  # "a m", "one s": not a duration
            number = parse_number(num_text)
            if number is None:
                continue
            if m.group("half1") or m.group("half2"):
                number += 0.5
            seconds = number * _unit_seconds(unit)
        extra = bool(m.group("more")) or bool(_EXTRA_BEFORE_RE.search(text[: m.start()]))
        if found and re.fullmatch(r"\s*(?:,|and)?\s*", text[found[-1].end : m.start()]):
            prev = found.pop()
            found.append(DurationMatch(prev.seconds + seconds, prev.start, m.end(),
                                       prev.extra or extra))
            continue
        found.append(DurationMatch(seconds, m.start(), m.end(), extra))
    return [d for d in found if d.seconds > 0]


_DETERMINERS = ("the ", "our ", "a ", "an ", "my ", "your ", "their ", "this ", "that ")


def with_article(title: str) -> str:
    """"Q3 budget discussion" -> "the Q3 budget discussion" (unless it already has one)."""
    return title if title.lower().startswith(_DETERMINERS) else f"the {title}"
