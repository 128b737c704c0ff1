"""Is this utterance meant for the bot? The turn-taking rule of a bot in a group call.

In a call with several people the bot answers only when addressed: its name or a wake phrase
anywhere in the utterance (matched loosely, because a small speech model hears "Hey assistant"
as "A assistant" or "hey assistance", and more loosely still where a name is called, at the
start: "Assessant, what are our action items?", "Assisting what is on the agenda?"), or the
speaker's next utterance in a short follow-up window after the bot answered them, or anyone's
next utterance after the bot asked the room a question. With one person in the call, every
utterance is addressed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9']+")


GREETINGS = frozenset({"hey", "hi", "hello", "ok", "okay"})
"""Words said before a name to call someone ("Hey assistant"); not content."""


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass
class _Window:
    speaker_id: str | None
    """None: the bot asked the room, anyone may answer."""
    until: float


class Addressing:
    """Decides ``addressed`` for each transcribed utterance; remembers follow-up windows."""

    def __init__(self, bot_name: str, wake_phrases: tuple[str, ...] = (),
                 follow_up_s: float = 8.0) -> None:
        self._names = [w for w in words(bot_name) if w]
        self._wake = [words(p) for p in wake_phrases if words(p)]
        self._follow_up_s = follow_up_s
        self._window: _Window | None = None

    def mentions_bot(self, text: str) -> bool:
        """The bot's name (or a wake phrase) is in the text, allowing for mishearing."""
        toks = words(text)
        if not toks:
            return False
        for phrase in [self._names, *self._wake]:
            if _contains_fuzzy(toks, phrase):
                return True
        called = _called_first(text)
        return called is not None and any(
            called[0] == name[0] and _close(called, name, _CALLED_RATIO)
            for name in ("".join(phrase) for phrase in [self._names, *self._wake] if phrase)
        )

    def leading_call(self, text: str) -> str | None:
        """The words ``text`` opens with that call the bot ("Hey assistant" of "Hey
        assistant, can you ..."), as written; None if it does not open with a call. A call
        is set off: a comma, a full stop or the end follows it ("Can the assistant take a
        note?" names the bot but does not call it)."""
        spans = [m.span() for m in re.finditer(r"[\w']+", text)][:3]
        for _, end in spans:
            prefix, rest = text[:end], text[end:]
            if self.mentions_bot(prefix):
                return prefix.strip() if _SET_OFF.match(rest) else None
        return None

    def decide(self, speaker_id: str, text: str, people_in_call: int, now: float) -> bool:
        """Whether the bot should answer this utterance (consumes a follow-up window)."""
        addressed = self.would_address(speaker_id, text, people_in_call, now)
        if addressed:
            self._window = None
        return addressed

    def would_address(self, speaker_id: str, text: str, people_in_call: int, now: float) -> bool:
        """``decide`` without consuming anything: for a draft transcription at a pause."""
        if not words(text):
            return False
        if people_in_call <= 1 or self.mentions_bot(text):
            return True
        window = self._window
        return window is not None and now <= window.until and window.speaker_id in (
            None, speaker_id)

    def bot_replied(self, speaker_id: str | None, reply: str, now: float) -> None:
        """Open the follow-up window after the bot finished speaking ``reply``.

        A reply ending in a question invites anyone in the room to answer; otherwise only the
        person the bot answered may follow up without naming it (nobody, after a statement the
        bot made on its own).
        """
        asked_room = reply.rstrip().endswith("?")
        if not asked_room and speaker_id is None:
            # Said on the bot's own initiative and asking nothing (or cut off): nobody is
            # expected to answer it, so nobody is heard as talking to the bot without its name.
            self._window = None
            return
        self._window = _Window(None if asked_room else speaker_id, now + self._follow_up_s)

    def close_window(self) -> None:
        self._window = None


def _contains_fuzzy(tokens: list[str], phrase: list[str]) -> bool:
    """True if ``phrase`` appears in ``tokens``, each word or the joined words close enough."""
    target = " ".join(phrase)
    joined_target = target.replace(" ", "")
    n = len(phrase)
    for size in {n, n + 1, max(1, n - 1)}:
        for i in range(len(tokens) - size + 1):
            candidate = tokens[i : i + size]
            if _close(" ".join(candidate), target) or _close("".join(candidate), joined_target):
                return True
    return False


_SET_OFF = re.compile(r"\s*([,.!?;:]|$)")
_LEADING_CALL = re.compile(r"^\s*([^,.?!;:]{1,40}),")
_CALLED_RATIO = 0.75
"""How close an utterance's opening words must be to a name (and they must begin with its
first letter): looser than anywhere else in an utterance, since a word in that place is
nearly always a call ("Assessant, what's next?", "Assisting what is on the agenda?"). The
first letter keeps "Resistant to change ..." or "Instant messaging ..." from calling the bot
("assistant")."""


def _called_first(text: str) -> str | None:
    """What an utterance opens with, greetings left out, that could be a call: the one or two
    words before an opening comma ("Hey Assessant, ..." -> "assessant"), joined, or else its
    first word ("Assisting what is ..." -> "assisting"); None for an empty text."""
    match = _LEADING_CALL.match(text.lower())
    if match is not None:
        toks = words(match.group(1))
        while toks and toks[0] in GREETINGS:
            toks = toks[1:]
        if 1 <= len(toks) <= 2:
            return "".join(toks)
    toks = [t for t in words(text) if t not in GREETINGS]
    return toks[0] if toks else None


def _close(a: str, b: str, ratio: float = 0.84) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) < 4:
        return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= ratio
