"""Resolve spoken due dates ("by Friday", "end of next week", "in three days") to ISO dates.

Action items keep the words as said (what people recognise when the notes are read back) and,
when the phrase names a day, the date it means relative to when it was said, so exports and
reminders can sort and compare them.

Conventions (documented in docs/notes-schema.md):
- a bare weekday ("by Friday") is the coming one: said on a Friday it means next week's Friday;
  "today" is the only way to mean today;
- "this Friday" may be today; "next Friday" is the Friday of next calendar week (weeks start on
  Monday);
- "end of (the) week" is this week's Friday (Sunday if said on the weekend), "next week" is next
  week's Monday, "end of next week" next week's Friday, "end of (the) month" the month's last day;
- a month and day ("March 3rd", "the 3rd of March") is the next such date, today included;
  "the 15th" is this month's if still to come, else next month's;
- "ASAP", "next meeting" are kept as said with no date.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from meetbot.meeting.spoken import NUMBER_PATTERN, ORDINALS, parse_number

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS: dict[str, int] = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({"jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8,
               "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12})

_PREP = (r"(?P<prep>\b(?:by|before|on|until|till|til|due|no later than|for|sometime|"
         r"at the latest by|latest by)\s+)?")
_WEEKDAY = "|".join(WEEKDAYS)
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_ORDINAL_WORD = "|".join(sorted(ORDINALS, key=len, reverse=True))
_DAY = rf"(?:\d{{1,2}}(?:st|nd|rd|th)?|{_ORDINAL_WORD})"
_PART_OF_DAY = r"(?:\s+(?:morning|afternoon|evening|night|noon|end of day|eod))?"

_NTH_WORD = re.compile(
    rf"(?P<prep>\b(?:by|before|on|until|till|due)\s+)(?P<phrase>the\s+(?P<day>{_ORDINAL_WORD}))"
    r"(?!\s+(?:item|one|topic|thing|point|time|step|part|slide|page|of\s+(?:the|these|those)))\b",
    re.IGNORECASE,
)
"""An ordinal word names a day only after a preposition ("by the fifteenth"), never in "the
first item"."""

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(_PREP + body + r"\b", re.IGNORECASE))
    for kind, body in (
        ("eod", r"(?P<phrase>(?:the\s+)?(?:end\s+of\s+(?:the\s+|to)?day|eod|close of business|"
                r"close of play|cob|end\s+of\s+business)(?:\s+today)?)"),
        ("eonw", r"(?P<phrase>(?:the\s+)?end\s+of\s+next\s+week)"),
        ("eow", r"(?P<phrase>(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?week|eow)"),
        ("eom", r"(?P<phrase>(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?month)"),
        ("next_month", r"(?P<phrase>next\s+month)"),
        ("next_week", r"(?P<phrase>next\s+week)"),
        ("this_week", r"(?P<phrase>this\s+week)"),
        ("day_after", r"(?P<phrase>(?:the\s+)?day\s+after\s+tomorrow)"),
        ("tomorrow", r"(?P<phrase>tomorrow" + _PART_OF_DAY + ")"),
        ("today", r"(?P<phrase>today|tonight|this\s+(?:morning|afternoon|evening)|later\s+today)"),
        ("weekday", rf"(?P<phrase>(?P<which>this\s+coming\s+|this\s+|next\s+|coming\s+)?"
                    rf"(?P<weekday>{_WEEKDAY})(?P<week>\s+week)?" + _PART_OF_DAY + ")"),
        ("in_n", rf"(?P<phrase>(?:in|within)\s+(?P<n>{NUMBER_PATTERN})\s+(?P<unit>days?|weeks?))"),
        ("month_day", rf"(?P<phrase>(?P<month>{_MONTH})\.?\s+(?:the\s+)?(?P<day>{_DAY}))"),
        ("day_month", rf"(?P<phrase>(?:the\s+)?(?P<day>{_DAY})\s+(?:of\s+)?(?P<month>{_MONTH}))"),
        ("iso", r"(?P<phrase>(?P<iso>\d{4}-\d{2}-\d{2}))"),
        ("nth", r"(?P<phrase>the\s+(?P<day>\d{1,2}(?:st|nd|rd|th)))"),
        ("asap", r"(?P<phrase>asap|as soon as possible)"),
        ("next_meeting", r"(?P<phrase>(?:the\s+)?next\s+(?:meeting|sync|standup|stand-up|call|"
                         r"check-in|session))"),
    )
)


_PATTERNS = (*_PATTERNS, ("nth", _NTH_WORD))


@dataclass(frozen=True)
class DueDate:
    """A due phrase found in an utterance."""

    text: str
    """As said, without the preposition, weekday and month names capitalised ("Friday")."""
    date: str | None
    """ISO date (YYYY-MM-DD), or None when the phrase names no day ("ASAP")."""
    start: int
    end: int
    """Span of the whole phrase in the searched text, preposition included, for removal."""


def find_due(text: str, wall_time: float, tz: tzinfo | None = None) -> DueDate | None:
    """The first due phrase in ``text``, resolved relative to ``wall_time`` (unix seconds).

    ``tz`` is the meeting's time zone (the machine's local zone when None).
    """
    today = datetime.fromtimestamp(wall_time, tz).date()
    best: tuple[int, int, DueDate] | None = None
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            resolved = _resolve(kind, m, today)
            if resolved is _SKIP:
                continue
            due = DueDate(_display(m.group("phrase")), _iso(resolved), m.start(), m.end())
            key = (m.start(), -(m.end() - m.start()))
            if best is None or key < best[:2]:
                best = (key[0], key[1], due)
            break
    return best[2] if best else None


def resolve_due(phrase: str, wall_time: float, tz: tzinfo | None = None) -> tuple[str, str | None]:
    """``(due_text, ISO date or None)`` for a due phrase; unknown phrases keep no date."""
    found = find_due(phrase, wall_time, tz)
    if found is None:
        return phrase.strip(), None
    return found.text, found.date


# ------------------------------------------------------------------------------- internals

_SKIP = object()


def _iso(resolved: object) -> str | None:
    return resolved.isoformat() if isinstance(resolved, date) else None


def _display(phrase: str) -> str:
    words = phrase.split()
    if len(words) > 1 and words[0].lower() == "the" and words[1].lower() in ("end", "next", "day"):
        words = words[1:]
    out = []
    for w in words:
        lw = w.lower().rstrip(".")
        if lw in WEEKDAYS or lw in MONTHS:
            out.append(w[:1].upper() + w[1:].lower())
        elif lw in ("asap", "eod", "eow", "cob"):
            out.append(lw.upper())
        else:
            out.append(w.lower())
    return " ".join(out)


def _day_number(text: str) -> int | None:
    t = text.lower()
    if t in ORDINALS:
        return ORDINALS[t]
    digits = re.match(r"\d+", t)
    return int(digits.group()) if digits else None


def _resolve(kind: str, m: re.Match[str], today: date) -> object:
    wd = today.weekday()
    if kind in ("eod", "today"):
        return today
    if kind == "tomorrow":
        return today + timedelta(days=1)
    if kind == "day_after":
        return today + timedelta(days=2)
    if kind == "eow":
        return today + timedelta(days=4 - wd) if wd <= 4 else today + timedelta(days=6 - wd)
    if kind == "eonw":
        return today + timedelta(days=7 - wd + 4)
    if kind == "next_week":
        return today + timedelta(days=7 - wd)
    if kind == "this_week":
        return today + timedelta(days=4 - wd) if wd <= 4 else today
    if kind == "eom":
        return today.replace(day=calendar.monthrange(today.year, today.month)[1])
    if kind == "next_month":
        y, mo = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        return date(y, mo, 1)
    if kind == "weekday":
        target = WEEKDAYS.index(m.group("weekday").lower())
        which = " ".join((m.group("which") or "").lower().split())
        if which == "this":
            return today + timedelta(days=(target - wd) % 7)
        if which == "next":
            return today + timedelta(days=7 - wd + target)
        coming = today + timedelta(days=(target - wd) % 7 or 7)
        # "Thursday week" (British): a week after the coming Thursday.
        return coming + timedelta(days=7) if m.group("week") else coming
    if kind == "in_n":
        n = parse_number(m.group("n"))
        if n is None:
            return _SKIP
        days = n * (7 if m.group("unit").lower().startswith("week") else 1)
        return today + timedelta(days=round(days))
    if kind in ("month_day", "day_month"):
        month = MONTHS[m.group("month").lower().rstrip(".")]
        day = _day_number(m.group("day"))
        return _next_month_day(today, month, day) if day else _SKIP
    if kind == "nth":
        day = _day_number(m.group("day"))
        if day is None or not 1 <= day <= 31:
            return _SKIP
        return _next_nth(today, day)
    if kind == "iso":
        try:
            return date.fromisoformat(m.group("iso"))
        except ValueError:
            return _SKIP
    if kind in ("asap", "next_meeting"):
        return None
    return _SKIP


def _next_month_day(today: date, month: int, day: int) -> object:
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return _SKIP


def _next_nth(today: date, day: int) -> object:
    year, month = today.year, today.month
    for _ in range(13):
        if day <= calendar.monthrange(year, month)[1]:
            candidate = date(year, month, day)
            if candidate >= today:
                return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return _SKIP
