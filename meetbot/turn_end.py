"""Does a transcript sound like the end of a turn? Text-based end-of-turn detection.

Silence alone is a poor judge of when someone has finished: wait long and every answer is
slow, wait short and people are cut off at every comma. The frameworks that answer fastest
look at *what* was said too (LiveKit's turn detector, Pipecat's smart-turn). meetbot does the
same with the transcription it starts at a short pause: a complete sentence lets the turn end
after that pause; a trailing conjunction, an article, a filler, a bare "Assistant," or a
comma means the speaker is mid-thought, and the turn waits longer than the usual silence
hangover for the rest. The usual hangover applies to a
turn of one or two words ("Yes." is as often the start of "Yes, let's move on." as an
answer), unless it names the bot: "Thanks, assistant." is done, "Hey assistant" (or what
Whisper makes of it, "Hand assistant") is not.

When a turn ended too early and its speaker goes on as the bot begins to answer, the two parts
are one utterance (``meetbot.conversation``); ``is_reaction`` tells words said back to the
answer ("Stop." / "Thanks.") from more of the turn.
"""

from __future__ import annotations

import re
from enum import Enum

from meetbot.addressing import GREETINGS, words


class TurnEnd(Enum):
    """What the words so far say about whether the speaker is done."""

    COMPLETE = "complete"
    """A finished sentence: end the turn at the pause."""
    UNSURE = "unsure"
    """Could go either way ("Yes."): let the silence decide."""
    CONTINUES = "continues"
    """Mid-thought ("Assistant," / "... and the"): wait longer than usual."""

_CONTINUES = frozenset(
    """
    a an the and but or nor so because cause if when while then than that which who whose
    to of in at by as for with from about into onto until
    my our your their his her its this these those some any every no
    is are was were be been am will would can could should shall may might must do does did
    have has had i we you they he she it let's lets please
    um uh erm er hmm well also plus maybe
    """.split()
)
"""Words a finished sentence rarely ends with: the speaker is still going. Particles that end
phrasal verbs ("let's move on", "sign off", "follow up") are not among them."""

_MIN_WORDS = 3
"""Fewer words than this are not judged complete from the text alone."""

_SHORT_AND_DONE = frozenset(
    "thanks thank cheers bye goodbye great perfect stop quiet enough recap".split()
)
"""Words that finish a short turn said to the bot ("Thanks, assistant." / "Assistant, stop.").
Any other short turn that names the bot is judged by where the name sits: last ("Hey
assistant", misheard as "Hand assistant") the request follows; otherwise silence decides."""

_ENDS_OPEN = re.compile(r"(,|;|:|-|—|–|\.\.\.|…)\s*$")


def judge_turn_end(text: str, bot_names: tuple[str, ...] = ()) -> TurnEnd:
    """What ``text`` (a transcription of speech up to a pause) says about the turn's end.

    ``bot_names`` are the words that only name the bot ("Hey assistant" alone is a call for
    attention, not a request: the request follows).
    """
    stripped = text.strip()
    tokens = words(stripped)
    if not tokens:
        return TurnEnd.UNSURE
    if _ENDS_OPEN.search(stripped) or tokens[-1] in _CONTINUES:
        return TurnEnd.CONTINUES
    names = {w for name in bot_names for w in words(name)}
    content = [t for t in tokens if t not in names and t not in GREETINGS]
    named = any(t in names for t in tokens)
    if not content:
        # Only the bot's name: the request follows. Only "Okay." / "Hi.": who knows.
        return TurnEnd.CONTINUES if named else TurnEnd.UNSURE
    if len(content) >= _MIN_WORDS:
        return TurnEnd.COMPLETE
    if not named:
        return TurnEnd.UNSURE  # "Yes." (", let's move on")
    if any(t in _SHORT_AND_DONE for t in content):
        return TurnEnd.COMPLETE
    return TurnEnd.CONTINUES if tokens[-1] in names else TurnEnd.UNSURE


_REACTIONS = frozenset(
    """
    stop wait hold on quiet enough shush cancel never mind thanks thank you cheers
    ok okay no nope sorry great perfect cool fine got it that's all right
    """.split()
)
"""Words said back to someone who has begun to answer: to stop, thank or acknowledge them."""


def is_reaction(text: str, bot_names: tuple[str, ...] = ()) -> bool:
    """Whether ``text`` only reacts to an answer its speaker heard begin ("Stop." / "Thanks,
    assistant." / "Okay, got it."), and so does not go on with the turn that answer is to: it
    adds nothing to that turn ("The budget request and hiring." does)."""
    names = {w for name in bot_names for w in words(name)}
    tokens = [t for t in words(text) if t not in names]
    return bool(tokens) and all(t in _REACTIONS for t in tokens)
