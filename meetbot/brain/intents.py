"""What an addressed turn asks of the bot: answers, navigation, questions.

Kept apart from note extraction: a single turn can do several things ("Yes, let's start with
the budget. Let's give it thirty seconds."), so this returns every signal found and the rule
brain decides the order. Patterns match normalised, punctuation-free-tolerant text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_I = re.IGNORECASE

_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|ya|yah|sure|ok|okay|alright|all right|sounds good|sounds great|"
    r"go ahead|go for it|let's do (?:it|that)|let us do (?:it|that)|please do|absolutely|"
    r"of course|definitely|correct|right|perfect|great|good idea|why not|do it|that works|"
    r"works for me|fine|let's go|i think so|indeed|affirmative)\b", _I)
_NO = re.compile(r"^(?:no|nope|nah|not yet|not now|let's not|let us not|do not|actually no|"
                 r"negative|hold on|wait)\b", _I)

_NEXT = re.compile(
    r"\b(?:(?:let's|let us|we can|we should|shall we|can we|we could|time to)\s+)?"
    r"(?:move|moving|go|going|carry|push)\s+on\b(?!\s+from)(?!\s+(?:to|with)\s+(?!the next)\w)"
    r"(?!\s+(?:the|our|today's)\s+agenda\b)"  # "the office move on the agenda"
    r"|\bnext\s+(?:agenda\s+)?(?:item|topic|point|one|thing|subject)\b(?!\s+(?:is|on))"
    r"|\bon\s*to\s+the\s+next\b|\bskip\s+(?:this|that|it|ahead)\b|\blet's\s+continue\b"
    r"|\b(?:we are|we're)\s+done\s+with\s+(?:this|that|it)\b", _I)
_MOVE_TO = re.compile(
    r"\b(?:(?:move|moving|skip|skipping|jump|jumping|switch|switching)\s+(?:on\s+|over\s+|ahead\s+)?"
    r"(?:to|onto)|(?:go|going)\s+(?:on|over|ahead)\s+to|let(?:'s| us)\s+go\s+to)"
    r"\s+(?P<x>(?!the next)(?!(?:the|our)\s+agenda\b)\w[^.?!]*)", _I)
"""("the office move to the agenda" is an agenda addition, not navigation.)"""
_BACK = re.compile(
    r"\b(?:go|going|come|coming|jump|step)\s+back\b(?!\s+to\s+(?!the previous|previous)\w)"
    r"|\bprevious\s+(?:agenda\s+)?(?:item|topic|point|one)\b|\bback\s+up\b", _I)
_BACK_TO = re.compile(
    r"\b(?:(?:go|going|come|coming|jump|get)\s+back|return|returning|circle back|revisit)"
    r"\s+(?:to\s+)?(?P<x>(?!the previous|previous)\w[^.?!]*)", _I)
_START = re.compile(
    r"\b(?:start|begin|kick off|open|lead off)\s+(?:with|on|by)\s+(?P<x>\w[^.?!]*)"
    r"|\blet(?:'s| us)\s+(?:start|begin|do|tackle|take)\s+(?P<y>(?!with\b|on\b|by\b|it\b|that\b|"
    r"this\b)\w[^.?!]*)", _I)
_START_PLAIN = re.compile(r"\blet(?:'s| us)\s+(?:get\s+)?(?:start|begin|started|going)\b"
                          r"(?!\s+(?:with|on|by)\b)", _I)
_DISCUSS = re.compile(
    r"\blet(?:'s| us)\s+(?:now\s+)?(?:talk about|discuss|cover|look at|go over|do|turn to|get to)"
    r"\s+(?P<x>\w[^.?!]*)", _I)

_ASK_ACTIONS = re.compile(r"\b(?:action items?|to-?dos?|tasks|next steps|follow[- ]?ups?|"
                          r"who is doing what|who does what|assignments)\b", _I)
_ASK_DECISIONS = re.compile(r"\b(?:decisions?|decided|decide|agreed|agree on)\b", _I)
_QUESTION = re.compile(r"\b(?:what|which|list|read|tell|remind|any|give|repeat|go over|who|"
                       r"how many|recap|summari[sz]e|show|do we have|did we|have we)\b|\?\s*$",
                       _I)
_ASK_RECAP = re.compile(
    r"\b(?:recap|summary|summari[sz]e|sum (?:it |this |that )?up|wrap (?:it |this |things )?up|"
    r"wrap-up|where are we|what have we (?:covered|done)|what did we cover|catch me up|"
    r"minutes so far|status update)\b", _I)
_ASK_TIME = re.compile(
    r"\b(?:how much time|how long (?:do we have|is left|have we got|have we)|time left|"
    r"time remaining|remaining time|time check|how are we (?:doing )?on time|how many minutes|"
    r"minutes left|seconds left|how are we for time|are we on time|out of time)\b", _I)
_ASK_AGENDA = re.compile(
    r"\b(?:what|read|list|tell|remind|show|go over|repeat)\b[^.?!]*\bagenda\b"
    r"|^agenda\W*$|\bwhat (?:are|else are) we (?:discussing|covering|talking about)\b"
    r"|\bwhat is (?:left|remaining) on\b", _I)
_ASK_NEXT = re.compile(r"\bwhat (?:is|comes) (?:up )?next\b|\bwhat is after this\b", _I)
_COMPLETE = re.compile(
    r"\b(?:mark|check off|tick off|close)\s+(?P<x>\w[^.?!]*?)\s+(?:as\s+)?"
    r"(?:done|complete|completed|finished|closed)\b"
    r"|\b(?:mark|check off|tick off|close)\s+(?:off\s+)?(?P<y>\w[^.?!]*)"
    r"|^(?:I|we)\s+(?:already\s+|just\s+)?(?:finished|did|completed|sent|booked)\s+"
    r"(?P<z>\w[^.?!]*)",
    _I)
_HELP = re.compile(
    r"\b(?:help (?:us|me|out)|keep us on (?:track|time|schedule)|stay on (?:track|time|schedule)|"
    r"keep (?:track|time|notes|the time)|take (?:the |some )?notes|what can you do|"
    r"how can you help|are you (?:there|listening|here|with us))\b", _I)
_THANKS = re.compile(r"\b(?:thanks|thank you|cheers|appreciate it)\b", _I)


@dataclass
class Intent:
    yes: bool = False
    no: bool = False
    next: bool = False
    back: bool = False
    start_ref: str | None = None
    """An item named to start ("start with X", "move on to X", "go back to X")."""
    start_may_add: bool = False
    """``start_ref`` came from "start with X" / "move on to X": add X when it is not on the
    agenda (rather than "let's take five", which must name an existing item to mean one)."""
    going_back: bool = False
    discuss_ref: str | None = None
    """"let's discuss X": start X when it is on the agenda, else it is an agenda addition."""
    start_plain: bool = False
    ask_actions: bool = False
    ask_decisions: bool = False
    ask_recap: bool = False
    ask_time: bool = False
    ask_agenda: bool = False
    ask_next: bool = False
    complete_ref: str | None = None
    """An action item said to be done ("mark the room booking as done")."""
    help: bool = False
    thanks: bool = False

    @property
    def navigates(self) -> bool:
        return bool(self.next or self.back or self.start_ref or self.start_plain)


_PRONOUNS = frozenset("it that this them you me us him her there here".split())


def _ref(text: str) -> str | None:
    """Cut a captured reference at the next clause ("the budget, let's give it ...")."""
    cut = re.split(r",|\s+(?:let's|let us|and|so|for|because|since|then|please|now|first)\b"
                   r"|\s+(?:we|I)\s+", text, maxsplit=1, flags=_I)[0]
    cut = cut.strip(" .?!")
    return None if not cut or cut.lower().split()[0] in _PRONOUNS else cut


def parse_intent(text: str) -> Intent:
    """Every request signal in an addressed turn (text already normalised, name removed)."""
    intent = Intent()
    t = text.strip()
    intent.yes = bool(_YES.match(t)) and not re.match(
        r"(?:ok|okay|alright|all right|right)[\s,]+so\b", t, _I)  # "OK so ..." moves along
    intent.no = not intent.yes and bool(_NO.match(t))
    if (m := _BACK_TO.search(t)) and (ref := _ref(m.group("x"))):
        intent.start_ref, intent.going_back = ref, True
    elif _BACK.search(t):
        intent.back = True
    if intent.start_ref is None and not intent.back and (m := _MOVE_TO.search(t)):
        ref = _ref(m.group("x"))
        if ref and not re.fullmatch(r"the next(?: \w+)?", ref, _I):
            intent.start_ref, intent.start_may_add = ref, True
    if intent.start_ref is None and not intent.back and (m := _START.search(t)):
        intent.start_ref = _ref(m.group("x") or m.group("y"))
        intent.start_may_add = m.group("x") is not None
    if intent.start_ref is None and (m := _DISCUSS.search(t)):
        intent.discuss_ref = _ref(m.group("x"))
    if intent.start_ref is None and not intent.back:
        intent.next = bool(_NEXT.search(t))
        intent.start_plain = not intent.next and bool(_START_PLAIN.search(t))
    question = bool(_QUESTION.search(t))
    intent.ask_actions = question and bool(_ASK_ACTIONS.search(t))
    intent.ask_decisions = question and bool(_ASK_DECISIONS.search(t)) and not intent.ask_actions
    intent.ask_recap = bool(_ASK_RECAP.search(t))
    intent.ask_time = bool(_ASK_TIME.search(t))
    intent.ask_agenda = bool(_ASK_AGENDA.search(t))
    intent.ask_next = bool(_ASK_NEXT.search(t))
    if m := _COMPLETE.search(t):
        intent.complete_ref = (m.group("x") or m.group("y") or m.group("z")).strip()
    intent.help = bool(_HELP.search(t))
    intent.thanks = bool(_THANKS.search(t))
    return intent
