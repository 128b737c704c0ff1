"""Is the bot being called, or only mentioned? The one matcher of the bot's name.

A bot named "assistant" or "Max" hears its name in ordinary talk ("we should hire a support
assistant", "max capacity is forty", "the Nova dashboard is down"). What makes a name a call is
where it stands, as in any language's vocative: set off at the start ("Nova, what's next?",
"hey assistant can you ..."), set off at the end ("..., Nova?", "what's next nova"), after a
greeting anywhere ("thanks Nova"), or at the start followed by a request ("Nova add hiring");
after a determiner, a possessive or a preposition ("my assistant", "ask Nova"), or at the
start followed by something that is not a request ("Max said he'd be late"), it is a mention.

The name is matched loosely because small speech models spell it as they like ("assistance",
"assistants", "A assistant"), and more loosely where a call is expected, at the start, as long
as the first letter is the name's ("Assessant, what's next?", "Novo, are you there?"): the
first letter keeps "Resistant to change ..." or "Instant messaging ..." from calling
"assistant".
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from meetbot.language.text import words

GREETINGS = frozenset({"hey", "hi", "hello", "ok", "okay", "hiya", "yo"})
"""Words said before a name to call someone ("Hey assistant"); not content."""

_LEAD_FILLERS = GREETINGS | frozenset(
    """so um uh erm oh and alright right well morning good afternoon evening wait yeah yes
    sorry actually hmm ah anyway now""".split()
)
"""Words that may come before a call at the start of an utterance ("um okay Nova, ...")."""

_THANKS_BEFORE = frozenset("thanks thank cheers".split())

_AUXILIARIES = frozenset(
    "can could would will shall should do does did is are was were have has may might".split()
)
_ASKED_OF = frozenset("you we i u ya there it this that everyone anyone someone".split())
"""After a name and an auxiliary, the words that make a question to the bot ("Nova, can you
...", "Nova do we ..."), against the name as subject ("Kai is out sick", "Max can fix it")."""

_REQUEST_STARTERS = frozenset(
    """what what's whats which who who's whos when where why how please pls add put start begin move
    go skip take make note mark set give tell read list recap summarize summarise remind stop
    be let let's lets keep track record write jot help check show repeat scratch cancel remove
    delete change update assign schedule extend timebox open close pause resume wrap jump switch
    continue create finish end thanks thank i i'm i'd i'll we we're we'll you you're just quick
    okay ok yes yeah no nope sure any shush hush mute quiet""".split()
)
"""Words that open a request or a question: a name just before them, at the start, is a call
("Nova add hiring to the agenda"); before anything else it is the subject ("Max said ...")."""

_MENTION_BEFORE = frozenset(
    """the a an my our your his her their its this that these those some any every no
    of to for with from about at by in on into onto like as than ask asked tell told named
    called call new support virtual personal digital ai executive research teaching minutes
    minute seconds hours""".split()
)
"""Words that make the name that follows them a thing spoken of ("my assistant", "ask Nova")."""

_SET_OFF = ",.!?;:"
_NAME_RATIO = 0.84
_CALLED_RATIO = 0.75
"""How close a word must be to the name: anywhere, and (beginning with the name's first
letter) where a call is expected, at the start. Measured against Whisper's spellings of
"assistant" in the latency benchmark's transcripts."""


@dataclass(frozen=True)
class _Token:
    text: str
    low: str
    start: int
    end: int


@dataclass(frozen=True)
class Call:
    """What an utterance does with the bot's name."""

    vocative: bool
    """The utterance calls the bot."""
    mentioned: bool
    """The name occurs in it, as a call or not."""
    body: str
    """The text without the call ("Nova, what's next?" -> "what's next?")."""
    lead: str | None
    """The opening words that call the bot, as written and set off ("Hey Nova" of "Hey Nova,
    can you ..."); None when the utterance does not open with a set-off call."""
    greeted: bool
    """It opened with a greeting ("hey", "hi", "hello", "good morning")."""
    tentative_body: str | None = None
    """Where the words alone cannot tell ("Nova agenda items are ...", speech recognition
    having dropped the comma, against "Max capacity is forty"): the text without the name,
    for the reader to decide by what the rest means. None when the words decide."""

    @property
    def name_only(self) -> bool:
        """Nothing but the call ("Nova?"): the speaker wants attention."""
        return self.vocative and not re.search(r"\w", self.body)


class BotName:
    """The bot's name (and wake phrases), matched as speech recognition spells them."""

    def __init__(self, name: str, wake_phrases: tuple[str, ...] = ()) -> None:
        self.name = name
        self._phrases = [p for p in ([words(name)] + [words(w) for w in wake_phrases]) if p]

    def occurs(self, text: str) -> bool:
        """The name (or a wake phrase) is in ``text`` in any role."""
        return bool(self._occurrences(_tokens(text), loose_first=True))

    def read(self, text: str) -> Call:
        """Whether ``text`` calls the bot, and the text without the call."""
        toks = _tokens(text)
        greeted = bool(re.match(r"^\s*(?:hey|hi|hello|hiya|good (?:morning|afternoon|evening))\b",
                                text, re.IGNORECASE))
        spans = self._occurrences(toks, loose_first=True)
        if not spans:
            return Call(False, False, text.strip(), None, greeted)
        vocative_span: tuple[int, int] | None = None
        for first, last in spans:
            if _is_vocative(text, toks, first, last):
                vocative_span = (first, last)
                break
        if vocative_span is None:
            first, last = spans[0]
            tentative = None
            if all(t.low in _LEAD_FILLERS for t in toks[:first]) and last + 1 < len(toks) and \
                    not toks[last].low.endswith("'s"):
                tentative = _remove_call(text, toks, first, last, True)
            return Call(False, True, text.strip(), None, greeted, tentative)
        first, last = vocative_span
        lead = None
        at_start = all(t.low in _LEAD_FILLERS for t in toks[:first])
        if (at_start or first <= 1) and _set_off_after(text, toks, last):
            lead = text[: toks[last].end].strip()
        body = _remove_call(text, toks, first, last, at_start)
        return Call(True, True, body, lead, greeted)

    def _occurrences(self, toks: list[_Token], *, loose_first: bool) -> list[tuple[int, int]]:
        """Token spans (first, last) where the name or a wake phrase is said."""
        found: list[tuple[int, int]] = []
        lows = [_bare(t.low) for t in toks]
        for phrase in self._phrases:
            target = " ".join(phrase)
            joined = target.replace(" ", "")
            n = len(phrase)
            for size in sorted({n, n + 1, max(1, n - 1)}):
                for i in range(len(toks) - size + 1):
                    cand = lows[i : i + size]
                    if _close(" ".join(cand), target) or _close("".join(cand), joined):
                        found.append((i, i + size - 1))
            if loose_first:
                for i in _call_positions(toks):
                    word = lows[i]
                    if word[:1] == joined[:1] and _close(word, joined, _CALLED_RATIO):
                        found.append((i, i))
        found = sorted(set(found))
        merged: list[tuple[int, int]] = []
        for span in found:
            if merged and span[0] <= merged[-1][1]:
                continue
            merged.append(span)
        return merged


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.group(0), m.group(0).lower(), m.start(), m.end())
            for m in re.finditer(r"[A-Za-z0-9']+", text)]


def _bare(word: str) -> str:
    return word[:-2] if word.endswith("'s") else word


def _call_positions(toks: list[_Token]) -> list[int]:
    """Where a call is expected: the first word after opening fillers, a word after a greeting
    or thanks, and the last word."""
    out = [i for i, t in enumerate(toks) if i > 0 and toks[i - 1].low in GREETINGS | _THANKS_BEFORE]
    first = next((i for i, t in enumerate(toks) if t.low not in _LEAD_FILLERS), None)
    if first is not None:
        out.append(first)
    if toks:
        out.append(len(toks) - 1)
    return sorted(set(out))


def _between(text: str, toks: list[_Token], a: int, b: int) -> str:
    """The characters between token ``a`` and token ``b`` (b = a + 1)."""
    return text[toks[a].end : toks[b].start]


def _set_off_after(text: str, toks: list[_Token], last: int) -> bool:
    if last + 1 >= len(toks):
        return True
    return any(c in _SET_OFF for c in _between(text, toks, last, last + 1))


def _set_off_before(text: str, toks: list[_Token], first: int) -> bool:
    return first > 0 and any(c in _SET_OFF for c in _between(text, toks, first - 1, first))


def _is_vocative(text: str, toks: list[_Token], first: int, last: int) -> bool:
    """Whether the name at tokens ``first..last`` calls the bot (see the module docstring)."""
    if toks[last].low.endswith("'s") and last + 1 < len(toks):
        return False  # "Nova's dashboard"
    before = [t.low for t in toks[:first]]
    prev = before[-1] if before else None
    after_set_off = _set_off_after(text, toks, last)
    at_end = last + 1 >= len(toks)
    if prev in GREETINGS or prev in _THANKS_BEFORE or (
        prev == "you" and len(before) >= 2 and before[-2] == "thank"
    ):
        return True
    if all(w in _LEAD_FILLERS for w in before):
        if after_set_off:
            return True
        rest = [t.low for t in toks[last + 1 :] if t.low not in _LEAD_FILLERS]
        if not rest:
            return True
        if rest[0] in _AUXILIARIES:
            return len(rest) > 1 and rest[1] in _ASKED_OF
        return rest[0] in _REQUEST_STARTERS
    set_off_before = _set_off_before(text, toks, first)
    if set_off_before and (after_set_off or at_end):
        return True
    if at_end and not set_off_before:
        recent = before[-2:]
        return not any(w in _MENTION_BEFORE for w in recent)
    return False


def _remove_call(text: str, toks: list[_Token], first: int, last: int, at_start: bool) -> str:
    """``text`` without the call and the greeting before it."""
    if at_start:
        rest = text[toks[last].end :]
        return rest.lstrip(" ,.:;!-").strip()
    begin = toks[first].start
    # Take the separator before the name along ("what's next, Nova?" -> "what's next?").
    while begin > 0 and text[begin - 1] in " ,":
        begin -= 1
    if first > 0 and toks[first - 1].low in GREETINGS and not _set_off_before(text, toks, first):
        begin = toks[first - 1].start  # "... hey Nova" goes with its greeting
    return (text[:begin] + text[toks[last].end :]).strip(" ,")


def _close(a: str, b: str, ratio: float = _NAME_RATIO) -> bool:
    if a == b:
        return True
    variants = {b + "s", b + "es"}
    if b.endswith("t"):
        variants.add(b[:-1] + "ce")
    if a in variants:
        return True
    if min(len(a), len(b)) < 4:
        return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= ratio
