"""The meeting's own words, as a prompt that biases speech recognition toward them.

Whisper tiny.en knows "Monday" and "budget", but it has no reason to prefer "Priya" over
"prior" or "Nova" over "no, but" unless something tells it these words are in play. Whisper's
decoder can be given "previous text" before it transcribes (the ``<|startofprev|>`` section
that faster-whisper fills from ``initial_prompt`` or ``hotwords``); words there become likelier
in what follows without being forced, so a line that does not contain them is transcribed as
before. This module builds that text from what the meeting knows: the bot's name, the people
in the room and the agenda's titles.

Two styles are offered because they read differently to the decoder: ``hotwords`` lists the
words separated by spaces (faster-whisper's ``hotwords``), ``prompt`` writes them as a list in
the punctuation and case of a transcript (what ``initial_prompt`` is usually given). The
decoder takes the previous text's style for its own, so ``hotwords`` also makes it drop commas
and question marks ("Nova add an action item ...", "Marco can you take notes on the office
move"), which addressing and turn-end judging read; and on 40 meeting lines in nine voices
(``benchmarks/stt.py``) ``prompt`` spelled more of the meeting's words right (442 of 486
against 415; none: 195) at a lower word error rate (10.2 % against 11.2 %; none: 26.1 %), with
no harm to lines without those words (4.7 % against 4.9 %). So ``prompt`` is the default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
"""Due dates are said as weekdays, but tiny.en already hears them well, and adding them made no
difference beyond noise (9.8 % word error rate against 10.2 %, lines without the meeting's
words 5.3 % against 4.7 %) while making every prompt seven words longer; written in the
``hotwords`` style they even took over (lines came back as just "Wednesday"). So a session
leaves them out."""

PROMPT_STYLES = ("hotwords", "prompt")

MAX_WORDS = 40
"""A vocabulary longer than this is cut (the first words are kept: the bot's name, then the
people): every prompt token is decoder work on each utterance."""

_SPACE = re.compile(r"\s+")


def meeting_vocabulary(
    bot_name: str,
    people: Iterable[str] = (),
    agenda_titles: Iterable[str] = (),
    *,
    weekdays: bool = False,
) -> list[str]:
    """The words to bias recognition toward, most important first, without duplicates.

    The bot's name comes first (a missed name is an unanswered turn), then the people, then
    the agenda's titles. Case is kept as written (names are capitalized in a transcript);
    duplicates are found ignoring case and spacing.
    """
    out: list[str] = []
    seen: set[str] = set()
    for group in ((bot_name,), people, agenda_titles, WEEKDAYS if weekdays else ()):
        for raw in group:
            word = _SPACE.sub(" ", str(raw)).strip(" \t,.;:!?")
            key = word.casefold()
            if word and key not in seen:
                seen.add(key)
                out.append(word)
    return out[:MAX_WORDS]


def vocabulary_text(words: Sequence[str], style: str) -> str:
    """The previous-text prompt for ``words`` in ``style`` ("" for no words).

    ``hotwords``: "Nova Lena Marco budget numbers". ``prompt``: "Nova, Lena, Marco, budget
    numbers." (a list in a transcript's punctuation).
    """
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown vocabulary style {style!r} (expected one of {PROMPT_STYLES})")
    words = [w for w in (_SPACE.sub(" ", str(w)).strip() for w in words) if w]
    if not words:
        return ""
    if style == "hotwords":
        return " ".join(words)
    return ", ".join(words) + "."
