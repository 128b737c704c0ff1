"""Matching names as transcribed against the people in the meeting.

Speech-to-text spells names it has not seen however it likes ("Lee" comes out "Leigh", "Lea",
"Li"; "Dana" as "Dayna"). Action item owners should be the participant's name as the room knows
it, so spoken names are matched by sound (a crude phonetic key) and by spelling similarity
against the speakers the bot has heard.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_SOUND_RULES: tuple[tuple[str, str], ...] = (
    ("igh", "i"), ("gh", ""), ("ph", "f"), ("ck", "k"), ("qu", "kw"), ("x", "ks"),
    ("c(?=[eiy])", "s"), ("c", "k"), ("z", "s"), ("kn", "n"), ("wr", "r"),
)


def sound_key(name: str) -> str:
    """First letter plus the consonant skeleton: "Lee", "Leigh", "Lea" -> "l"; "Dana" -> "dn"."""
    w = re.sub(r"[^a-z]", "", name.lower())
    if not w:
        return ""
    for pattern, repl in _SOUND_RULES:
        w = re.sub(pattern, repl, w)
    if not w:
        return ""
    head, tail = w[0], re.sub(r"[aeiouyhw]", "", w[1:])
    key = head + tail
    return re.sub(r"(.)\1+", r"\1", key)


class NameBook:
    """The names of the people in the meeting (not the bot), for fuzzy lookups."""

    def __init__(self, names: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self._names: list[str] = []
        self._exclude = {e.lower() for e in exclude}
        for n in names:
            self.add(n)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def add(self, name: str) -> None:
        name = " ".join(name.split())
        if name and name.lower() not in self._exclude and name not in self._names:
            self._names.append(name)

    def match(self, spoken: str) -> str | None:
        """The known name ``spoken`` most likely is, or None."""
        s = spoken.strip(" ,.?!'\"")
        if not s:
            return None
        low = s.lower()
        for n in self._names:
            if n.lower() == low or n.split()[0].lower() == low:
                return n
        key = sound_key(s)
        best: tuple[float, str] | None = None
        for n in self._names:
            first = n.split()[0]
            ratio = difflib.SequenceMatcher(None, low, first.lower()).ratio()
            same_sound = bool(key) and sound_key(first) == key and low[0] == first[0].lower()
            if same_sound or ratio >= 0.8:
                score = ratio + (1.0 if same_sound else 0.0)
                if best is None or score > best[0]:
                    best = (score, n)
        return best[1] if best else None

    def others(self, speaker: str) -> list[str]:
        return [n for n in self._names if n != speaker]
