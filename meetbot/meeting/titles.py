"""How an agenda item is named in the notes: the way an agenda reads, not the way it was said.

The language layer gives a title as said ("plan the product launch"); an agenda reads better
with the topic first and the verb as a noun after it ("product launch planning"). Only a
leading verb changes; a title that is already a topic ("Q3 budget") stays as it is.
"""

from __future__ import annotations

import re

_VERBS: tuple[tuple[str, str], ...] = (
    ("get an update on", "update"), ("check in on", "check-in"), ("catch up on", "update"),
    ("talk about", ""), ("talk through", ""), ("go over", "review"), ("go through", "review"),
    ("look at", ""), ("look into", ""), ("decide on", "decision"), ("agree on", "decision"),
    ("figure out", ""), ("sort out", ""), ("work on", ""), ("kick off", "kickoff"),
    ("hire for", "hiring"), ("update on", "update"),
    ("discuss", "discussion"), ("cover", ""), ("review", "review"), ("plan", "planning"),
    ("finalize", "finalization"), ("finalise", "finalization"), ("prepare", "preparation"),
    ("prep", "preparation"), ("brainstorm", "brainstorm"), ("approve", "approval"),
    ("prioritize", "prioritization"), ("prioritise", "prioritization"), ("decide", "decision"),
    ("address", ""), ("present", "presentation"), ("demo", "demo"), ("recap", "recap"),
    ("debrief", "debrief"), ("tackle", ""),
)
"""A leading verb phrase and the noun it becomes after the topic ("" drops it)."""
_LEADING_VERB = re.compile(
    r"^(?P<verb>" + "|".join(re.escape(v) for v, _ in sorted(_VERBS, key=lambda x: -len(x[0])))
    + r")\s+(?:the\s+|our\s+|a\s+|an\s+|some\s+)?(?P<topic>\S.*)$", re.IGNORECASE)
_SUFFIX = dict(_VERBS)


_VERB_ALT = "|".join(re.escape(v) for v, _ in sorted(_VERBS, key=lambda x: -len(x[0])))


def agenda_title(said: str, utterance: str = "") -> str:
    """``said`` ("plan the product launch") as an agenda title ("product launch planning").

    When the verb was said just before the title rather than in it ("we need to discuss the
    Q3 budget" gives the title "Q3 budget"), ``utterance`` supplies it: "Q3 budget
    discussion"."""
    title = " ".join(said.split())
    if utterance and _LEADING_VERB.match(title) is None:
        before = re.search(rf"\b(?P<verb>{_VERB_ALT})\s+(?:the\s+|our\s+|a\s+|an\s+)?"
                           rf"{re.escape(title)}\b", utterance, re.IGNORECASE)
        if before is not None:
            title = f"{before.group('verb')} {title}"
    m = _LEADING_VERB.match(title)
    if m is None:
        return title
    topic = m.group("topic")
    suffix = _SUFFIX[m.group("verb").lower()]
    if not suffix or topic.lower().split()[-1].startswith(suffix[:4]):
        return topic
    return f"{topic} {suffix}"
