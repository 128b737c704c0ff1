"""Slot filling: once the classifier has said *what* an utterance does, read its arguments.

The classifier (meetbot/language/intents.py) decides the intents; these readers only pull the
arguments out, and say None when there are none to pull, which then drops an intent that
cannot stand without them (an agenda addition with no items). Every reader works on the
normalised text (meetbot/language/text.py), so "I'll" is "I will" and "Q three" is "Q3". The
lexicons here are short on purpose: they name the words that frame an argument ("add ... to
the agenda", "who owns ..."), not the sentences people say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meetbot.language.meaning import Context
from meetbot.language.names import NameBook
from meetbot.language.text import strip_punctuation
from meetbot.meeting.dates import DueDate, find_due
from meetbot.meeting.matching import best_title_match
from meetbot.meeting.spoken import find_durations

_I = re.IGNORECASE

FILLERS = frozenset("um uh erm er hmm like okay ok so yeah well basically actually just".split())
_DETERMINERS = ("the ", "a ", "an ", "our ", "my ", "some ", "this ", "that ")
_PRONOUNS = frozenset("it this that them these those one everything something".split())


def clean(text: str) -> str:
    """Strip punctuation, fillers at the ends and extra spaces from a slot value."""
    t = re.sub(r"[\"“”]", "", text)
    t = re.sub(r"\b(?:um+|uh+|erm|er|hmm)\b[,]?", " ", t, flags=_I)
    t = " ".join(t.split())
    t = strip_punctuation(t)
    while True:
        parts = t.split()
        if parts and parts[0].lower() in FILLERS | {"and", "also", "then", "please"}:
            t = " ".join(parts[1:])
            continue
        if parts and parts[-1].lower() in FILLERS | {"please", "too", "today", "now", "then"}:
            t = " ".join(parts[:-1])
            continue
        break
    return strip_punctuation(t)


def _drop_determiner(text: str) -> str:
    low = text.lower()
    for d in _DETERMINERS:
        if low.startswith(d):
            return text[len(d):]
    return text


# ----------------------------------------------------------------------------------- agenda

_AGENDA_CUES = re.compile(
    r"\b(?:add(?:ing)?|put|include|throw in|stick|get)\b"
    r"|\b(?:agenda|topics?|items?|things?|points?)\b(?:\s+(?:for|today|this meeting|"
    r"for today))*\s*(?:is|are|includes?|has|will be|looks like|:|would be)\b:?"
    r"|\b(?:cover|discuss|go over|go through|talk about|talk through|look at|review|"
    r"get through|tackle|hit|touch on)\b"
    r"|\b(?:we have|there is|there are|we've got|we have got)\b"
    r"|\b(?:meeting|here|call|meet)\s+(?:about|on|to discuss|to talk about|for)\b"
    r"|:",
    _I,
)
_AGENDA_TAIL = re.compile(
    r"(?:\s+(?:to|on|onto|in|into)\s+(?:the\s+|our\s+|today's\s+|this\s+)?"
    r"(?:agenda|list|meeting)\b.*$)"
    r"|(?:\s+(?:today|this meeting|please|as well|too|if we have time|for today)\s*$)",
    _I,
)
_ITEM_SPLIT = re.compile(
    r"\s*(?:[,;]|\band then\b|\band also\b|\bas well as\b|\bplus\b|\bthen\b|\band\b|"
    r"\bfollowed by\b)\s*", _I)
_ITEM_LEAD = re.compile(
    r"^(?:(?:first|firstly|second|secondly|third|lastly|finally|next|then|after that|also|"
    r"maybe|the|our|a|an|some|quickly|one|two|three|four|five|number \w+|"
    r"(?:an? )?(?:items?|topics?|points?|discussion)(?: (?:about|on|for|regarding))?)"
    r"\b[\s,:]*)+", _I)
_COUNT_LEAD = re.compile(
    r"^(?:\w+\s+)?(?:items?|things?|topics?|points?)\s*(?:today|for today|this time)?\s*:\s*",
    _I)
"""("We have) three things today: ..." — the count before the list."""
_COUNT_WORDS = re.compile(
    r"^(?:\w+\s+)?(?:items?|things?|topics?|points?)\s*:?\s*$", _I)


def agenda_items(text: str) -> list[str]:
    """The titles an agenda addition names ("add X and Y to the agenda" -> [X, Y])."""
    return [title for title, _ in agenda_entries(text)]


def agenda_entries(text: str) -> list[tuple[str, float | None]]:
    """The titles an agenda addition names, each with the time said for it ("plan the
    offsite for ten minutes and review the metrics for five" -> [(..., 600), (..., 300)])."""
    body = text
    cue = _AGENDA_CUES.search(body)
    if cue is not None:
        # The list follows the first framing words ("the agenda is: ..."), taken together.
        end = cue.end()
        while (more := _AGENDA_CUES.match(body, end + len(body[end:]) - len(body[end:].lstrip(
                " :,")))) is not None and more.end() > end:
            end = more.end()
        body = body[end:]
    body = _COUNT_LEAD.sub("", body.strip())
    for sentence in re.split(r"(?<=[.!?])\s+", body.strip()):
        items = _list_items(sentence)
        if items:
            return items
    return []


def _list_items(body: str) -> list[tuple[str, float | None]]:
    body = re.split(r"\b(?:let us|let's|should we|can we|shall we|and let us|and let's)\b",
                    body, flags=_I)[0]
    body = _AGENDA_TAIL.sub("", body)
    items: list[tuple[str, float | None]] = []
    for seg in _ITEM_SPLIT.split(body):
        durations = find_durations(seg)
        seconds = durations[0].seconds if durations else None
        seg = _strip_duration(seg)
        seg = clean(_ITEM_LEAD.sub("", clean(seg)))
        seg = _AGENDA_TAIL.sub("", seg)
        seg = clean(seg)
        words = seg.split()
        if not words or len(words) > 8 or seg.lower() in _PRONOUNS or _COUNT_WORDS.match(seg):
            continue
        if words[0].lower() in ("we", "i", "you", "they", "it", "is", "are", "to"):
            continue
        items.append((seg, seconds))
    return items


def _strip_duration(seg: str) -> str:
    durations = find_durations(seg)
    if not durations:
        return seg
    d = durations[0]
    before = re.sub(r"\s*\b(?:for|about|around|with|taking|take|max|maximum|give it|"
                    r"give|spend|allow)\s*$", "", seg[: d.start], flags=_I)
    after = re.sub(r"^\s*(?:each|max|tops|for it|on it)\b", "", seg[d.end:], flags=_I)
    after = re.sub(r"^\s*(?:on|for)\s+", " ", after, flags=_I)
    return f"{before} {after}"


_REF_CUES = re.compile(
    r"\b(?:start(?:ing)? (?:with|on|off with)|begin(?:ning)? (?:with|on)|kick off with|"
    r"lead (?:off )?with|open with|go(?:ing)? (?:back )?to|jump(?:ing)? (?:back )?to|"
    r"move(?:ing)? (?:on |over |ahead )?to|switch(?:ing)? (?:over )?to|skip(?:ping)? (?:ahead )?"
    r"(?:to)?|come back to|circle back to|get back to|return to|revisit|back to|turn to|"
    r"on ?to|onto|talk about|discuss|cover|tackle|take|do|let us do|with|pass on|drop|"
    r"postpone|defer|push)\b",
    _I,
)


_ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "sixth": 5,
             "last": -1, "final": -1}
_ORDINAL_REF = re.compile(
    r"\b(?:the\s+)?(?P<n>" + "|".join(_ORDINALS) + r"|\d)(?:st|nd|rd|th)?\s+"
    r"(?:agenda\s+)?(?:item|topic|point|one|thing)\b", _I)


def item_ref(text: str, ctx: Context) -> str | None:
    """The agenda item an utterance points at ("let's jump to hiring", "the second item"),
    as the agenda writes it when it is on the agenda; None for "this one" or none at all."""
    if ctx.agenda and (m := _ORDINAL_REF.search(text)) is not None:
        n = m.group("n").lower()
        index = _ORDINALS[n] if n in _ORDINALS else int(n) - 1
        if -len(ctx.agenda) <= index < len(ctx.agenda):
            return ctx.agenda[index]
    candidates = list(_REF_CUES.finditer(text))
    for cue in reversed(candidates):
        ref = clean(_cut_clause(text[cue.end():]))
        ref = clean(_ITEM_LEAD.sub("", ref)) if ref else ref
        if not ref or ref.split()[0].lower() in _PRONOUNS | {"the", "next", "previous",
                                                              "last", "item", "topic"}:
            continue
        return resolve_title(ref, ctx) or ref
    if ctx.agenda:
        found = best_title_match(text, [(t, t) for t in ctx.agenda])
        if found is not None:
            return found
    return None


def resolve_title(ref: str, ctx: Context) -> str | None:
    """The agenda title ``ref`` names, if any."""
    if not ctx.agenda:
        return None
    return best_title_match(ref, [(t, t) for t in ctx.agenda])


def _cut_clause(text: str) -> str:
    """Up to the end of the clause ("hiring, give it ten minutes" -> "hiring")."""
    cut = re.split(r"[,.;?!]|\s+(?:and|so|for|because|since|then|please|now|first|next|"
                   r"instead|today|let us|let's|give|we|I)\b", text, maxsplit=1, flags=_I)[0]
    return cut


# ------------------------------------------------------------------------------------ time

@dataclass(frozen=True)
class Timebox:
    seconds: float
    extra: bool
    item: str | None


def timebox(text: str, ctx: Context) -> Timebox | None:
    """The duration an utterance gives an item, and the item when it is named."""
    durations = [d for d in find_durations(text) if not re.match(
        r"^\s*(?:left|remaining|ago|late|over|in)\b", text[d.end:], _I)]
    if not durations:
        return None
    d = durations[0]
    extra = d.extra or bool(re.search(r"\b(?:extend|another|more|extra|additional)\b",
                                      text, _I))
    before, after = text[: d.start], text[d.end:]
    ref: str | None = None
    m = re.search(r"\b(?:give|giving|allocate|allot|timebox|time box|time-box|cap|limit|keep)"
                  r"\s+(?P<ref>.+?)\s+(?:to|at|for)?\s*$", before, _I)
    if m:
        ref = m.group("ref")
    else:
        m = re.match(r"^\s*(?:\w+\s+)?(?:on|for|to)\s+(?P<ref>[^.?!,]+)", after, _I)
        if m:
            ref = m.group("ref")
    item: str | None = None
    if ref:
        ref = clean(_cut_clause(ref))
        ref = clean(re.sub(r"^(?:the\s+)?(?:item|topic)\s+", "", ref, flags=_I))
        words = ref.split()
        if words and words[0].lower() not in _PRONOUNS | {"us", "ourselves", "me", "everyone",
                                                          "each", "them", "you"}:
            item = resolve_title(ref, ctx) or ref
    return Timebox(d.seconds, extra, item)


# ------------------------------------------------------------------------------- people

_NOT_NAMES = frozenset(
    """we you they he she it this that there here everyone everybody someone somebody anyone
    nobody who which what where when why how then so and but or also maybe i the a an all
    team people folks guys okay ok sure yes yeah no well great good right first next last
    today tomorrow let action item for please thanks hey hi hello""".split()
)


def owner_in(text: str, ctx: Context, names: NameBook) -> str | None:
    """The first participant named in ``text`` (as the room spells them)."""
    for m in re.finditer(r"[A-Za-z][\w'-]*", text):
        word = m.group(0)
        if word.lower() in _NOT_NAMES:
            continue
        bare = word[:-2] if word.lower().endswith("'s") else word
        known = names.match(bare)
        if known:
            return known
    return None


# ------------------------------------------------------------------------------- actions

_MODALS = (r"(?:will|shall|is going to|are going to|am going to|going to|needs to|need to|"
           r"has to|have to|should|is to|agreed to|volunteered to|offered to|promised to|"
           r"can|is on|is taking|takes|owns|is handling|will handle|would|to)")


@dataclass(frozen=True)
class ActionSlots:
    owner: str | None
    task: str
    due: DueDate | None


def action(text: str, ctx: Context, names: NameBook, *, request: bool = False
           ) -> ActionSlots | None:
    """Owner, task and due date of an action item or a request."""
    due = find_due(text, ctx.wall_time, ctx.tz)
    body = text
    if due is not None:
        body = body[: due.start] + " " + body[due.end:]
    body = " ".join(body.split())
    owner: str | None = None
    task: str | None = None

    explicit = re.search(r"\b(?:action items?|to-?do|task)\b\s*(?:for|is)?\s*", body, _I)
    if explicit and not request:
        rest = body[explicit.end():]
        m = re.match(r"^(?:for\s+)?(?P<who>[A-Za-z][\w'-]*)\s*(?:[:,-]|\s+(?:to|will|should|"
                     r"needs to|is going to))\s*(?P<rest>.+)$", rest, _I)
        if m and (who := _who(m.group("who"), ctx, names)):
            owner, task = who, m.group("rest")
        else:
            task = rest.lstrip(":,- ")
            owner = owner_in(task, ctx, names)
            sub = _subject_modal(task, ctx, names)
            if sub is not None:
                owner, task = sub
    if task is None:
        m = re.search(r"\b(?P<who>[A-Za-z][\w'-]*)\s*,\s*(?:you|you are|you will)\s+"
                      r"(?:own|take|handle|do|have|get|are on|are taking)\b\s*(?P<rest>.*)",
                      body, _I)
        if m and (who := _who(m.group("who"), ctx, names)):
            # "you own / have / take X" names the task X; "you handle / do X" keeps its verb.
            verb = re.search(r"\b(handle|do)\b", m.group(0), _I)
            owner, task = who, f"{verb.group(1)} {m.group('rest')}" if verb else m.group("rest")
    if task is None:
        m = re.search(r"\b(?P<who>[A-Za-z][\w'-]*)\s*,\s*(?:you are|you will be|you're)\s+"
                      r"(?:in charge of|responsible for|on the hook for|looking after|the owner of|"
                      r"owning|handling|taking)\s+(?P<rest>.+)", body, _I) or re.search(
            r"\b(?P<who>[A-Za-z][\w'-]*)\s*,\s*(?P<rest>.+?)\s+(?:is|are)\s+(?:all\s+)?"
            r"(?:yours|on you|your job|your baby)\b", body, _I)
        if m and (who := _who(m.group("who"), ctx, names)):
            owner, task = who, m.group("rest")
    if task is None and request:
        m = re.search(r"\b(?:can|could|would|will)\s+you\s+(?:please\s+|maybe\s+|also\s+)?"
                      r"(?P<rest>.+)$", body, _I) or re.search(
            r"\b(?:please|i need you to|i'd like you to|I would like you to|you should|"
            r"you need to|make sure (?:you|to)|mind)\s+(?P<rest>.+)$", body, _I)
        if m:
            task = m.group("rest")
            owner = owner_in(body[: m.start()] + " " + body[m.end():], ctx, names) or (
                owner_in(body, ctx, names))
            task = re.sub(r"[\s,]+(?:[A-Za-z][\w'-]*)\s*[?.!]*$",
                          lambda mm: "" if names.match(mm.group(0).strip(" ,?.!")) else mm.group(0),
                          task)
    if task is None:
        sub = _subject_modal(body, ctx, names)
        if sub is not None:
            owner, task = sub
    if task is None:
        m = re.search(r"\b(?:let me|leave it (?:to|with) me|I(?: will|'ll)? take care of|"
                      r"I(?: will|'ll)? handle|I(?: can|'ll| will)? take)\b\s*(?P<rest>.*)",
                      body, _I)
        if m:
            owner, task = ctx.speaker or None, m.group("rest")
    if task is None:
        m = re.search(r"\bremind\s+(?P<who>[A-Za-z][\w'-]*)\s+to\s+(?P<rest>.+)", body, _I)
        if m:
            owner, task = _who(m.group("who"), ctx, names, allow_me=True), m.group("rest")
    if task is None:
        return None
    task = _task_text(task, owner, ctx)
    if not task or (len(task.split()) < 2 and task.lower() in _PRONOUNS):
        return None
    return ActionSlots(owner, task, due)


_CLAUSE_BREAK = re.compile(
    r"(?:,\s*(?:and\s+|while\s+|then\s+)?|;\s*|\s+(?:and|while|then)\s+)"
    r"(?=(?:I|[A-Z][\w'-]*|[a-z][\w'-]*)(?:\s+(?:and\s+[A-Za-z][\w'-]*))?\s+"
    r"(?:will|is going to|are going to|am going to|can|should|needs to|has to|is on|owns|"
    r"takes|is taking|is handling)\b)")


def action_clauses(text: str) -> list[str]:
    """``text`` cut where another person's commitment begins ("Lee will draft it and I will
    review it" -> two clauses); a due date said once at the end belongs to every clause."""
    parts = [p.strip() for p in _CLAUSE_BREAK.split(text) if p and p.strip()]
    if len(parts) < 2:
        return [text]
    return parts


def _who(word: str, ctx: Context, names: NameBook, *, allow_me: bool = False) -> str | None:
    low = word.lower()
    if low == "i" or (allow_me and low == "me"):
        return ctx.speaker or None
    if low in _NOT_NAMES:
        return None
    return names.match(word)


_SUBJECT = re.compile(
    rf"\b(?P<who>[A-Za-z][\w'-]*(?:\s+and\s+[A-Za-z][\w'-]*)?)\s+"
    rf"(?:(?:also|then|just|probably|definitely|can)\s+)*(?P<modal>{_MODALS})\s+"
    r"(?:(?:also|then|just|probably|definitely|please|go ahead and|try to|make sure to|"
    r"take care of|handle|be)\s+)*(?P<rest>\w.*)", _I)


def _subject_modal(body: str, ctx: Context, names: NameBook) -> tuple[str | None, str] | None:
    """"Ben will fix X", "I will send Y", "Maria is going to ..." -> (owner, the rest)."""
    pos = 0
    while (m := _SUBJECT.search(body, pos)) is not None:
        who = m.group("who")
        parts = [p for p in re.split(r"\s+and\s+", who) if p]
        owners = [_who(p, ctx, names) for p in parts]
        if owners and all(owners):
            if re.search(r"\b(?:not|never|no one|nobody)\s*$", body[: m.start()], _I) or \
                    re.match(r"not\b", m.group("rest"), _I):
                return None
            owner = " and ".join(o for o in owners if o)
            return owner, m.group("rest")
        nxt = re.search(r"\s", body[m.start("who"):])
        if nxt is None:
            break
        pos = m.start("who") + nxt.end()
    return None


_TASK_TAIL = re.compile(
    r"(?:[\s,]+(?:okay|ok|right|then|as well|too|for us|if that is okay|if that works|"
    r"please|I think|I guess|and|so|but|on that|on it|for that|yeah|alright))+\s*$", _I)


def _task_text(task: str, owner: str | None, ctx: Context) -> str:
    text = re.split(r"(?<=[.!?])\s+", task.strip())[0]
    text = re.sub(r"[?!.;]+(?:\s|$)", " ", text)
    text = clean(text)
    text = _TASK_TAIL.sub("", text)
    text = re.sub(r"^(?:to|be|go ahead and|also|then|please)\s+", "", text, flags=_I)
    return clean(text)


# ------------------------------------------------------------------- decisions and notes

_DECISION = re.compile(
    r"\b(?:decided|decide|agreed|agree|settled|landed|concluded|voted|committed)\b"
    r"(?:\s+(?:that|to|on|upon|we will|we would|we are going to|we should))*\s*:?\s*"
    r"|\b(?:final answer|final decision|the decision|decision|verdict|conclusion|"
    r"the call|the plan)\b\s*(?:is|was|:|-)?\s*(?:that|to)?\s*"
    r"|\b(?:it is|that is)\s+(?:agreed|decided|settled|final)\b[\s,:]*(?:then)?\s*"
    r"|\b(?:we are|we will|we're|we'll|let us|let's|we are going to|we're going to)\s+"
    r"(?=go(?:ing)?\s+with\b)",
    _I)


def decision(text: str) -> str | None:
    """The decided thing, in its base form ("we're going with X" -> "go with X")."""
    matches = list(_DECISION.finditer(text))
    if not matches:
        return None
    rest = text[matches[0].end():]
    rest = re.sub(r"^(?:we will|we'll|we are going to|we should|we would|to|that|then|so)\s+",
                  "", rest.strip(), flags=_I)
    rest = re.sub(r"^(?:made|is|was)\b[\s,:]*", "", rest, flags=_I)
    rest = re.sub(r"^(?:we|everyone|the team)\s+(?:are\s+|will\s+|would\s+|shall\s+)?",
                  "", rest, flags=_I)
    rest = _base_form(rest)
    rest = _first_clause(rest)
    out = clean(_TASK_TAIL.sub("", rest))
    return out or None


def _base_form(text: str) -> str:
    """A decision in its base form: "moving the standup" -> "move the standup"."""
    m = re.match(r"([A-Za-z]+)ing\b", text)
    if m is None or m.group(1).lower() in ("br", "th", "s", "k", "r", "w", "n"):
        return text
    stem = m.group(1)
    low = stem.lower()
    if low == "go":
        base = stem
    elif len(low) >= 3 and low[-1] == low[-2] and low[-1] not in "lsz":
        base = stem[:-1]  # shipping -> ship
    elif low[-1] in "vkzc" or (len(low) <= 3 and low[-1] not in "aeiouwy") or (
            re.search(r"[^aeiou][aeiou][^aeiouwxy]$", low) is not None
            and low.endswith(("at", "it", "ir", "ur", "ak", "os", "us", "ov", "ot"))):
        base = stem + "e"  # moving -> move, using -> use, hiring -> hire
    else:
        base = stem
    return base + text[m.end():]


def _first_clause(text: str) -> str:
    """Up to where another statement starts ("..., and Chen will call them", "... everyone
    agrees", "... Maria, can you ...")."""
    text = re.split(r"(?<=[.!?])\s+", text.strip())[0]
    return re.split(
        r",?\s+(?:and|so|but)\s+(?=(?:I|we|[A-Z][\w'-]*|let me)\s+(?:will|is going to|can|"
        r"am|are|to|need|should|have|has)\b)"
        r"|,\s*(?:and\s+)?(?:I|we|you|let me|everyone|[A-Za-z][\w'-]*,?\s+(?:can|could|would|"
        r"will|please|you))\b"
        r"|\s+and\s+(?:I will|I'll|let me)\b",
        text)[0]


_NOTE = re.compile(
    r"\b(?:(?:put|stick|add|write|get|pop)\s+(?:it\s+|this\s+|that\s+)?(?:in|into|on|down in)\s+"
    r"the\s+(?:notes|minutes|record)|let the record show|for the notes|for the minutes|"
    r"make a note|take a note|note for the record|for the record|please note|note down|"
    r"write down|jot down|put down|remember|keep in mind|record|note|fyi|heads up)\b"
    r"\s*(?:that|of|:|,|-)?\s*", _I)


def note_text(text: str) -> str | None:
    m = _NOTE.search(text)
    if m is None:
        return None
    out = clean(_first_clause(text[m.end():]))
    return out if len(out.split()) >= 2 else None


# ------------------------------------------------------------------------ questions

def asked_task(text: str) -> str | None:
    """The item a "who owns X?" question is about."""
    m = re.match(r"^(?P<x>[^,?]+),\s*who\b", text.strip(), _I)
    if m is None:
        text = re.split(r"\s+and\s+(?=what|who|when|how|did)\b|[?]", text)[0]
        m = re.search(
            r"\bwho(?:se)?(?:\s+(?:is|was|has|had|will|were))?(?:\s+(?:going to|supposed to|"
            r"meant to))?\s+(?:name\s+is\s+(?:against|on|next to)|put (?:their|a) hand up for|"
            r"owning|doing|handling|taking care of|takes care of|looking after|looks after|"
            r"responsible for|in charge of|working on|on the hook for|assigned to|signed up for|"
            r"volunteered for|owns|own|on|got|has|took|taking|takes|do|does|did|take|handle|"
            r"handles|send|sending|is)?\s*(?P<x>.+)$", text, _I)
    if m is None:
        return None
    out = clean(re.sub(r"\b(?:again|now)\s*$", "", m.group("x"), flags=_I))
    out = re.sub(r"^(?:the\s+)?(?:action item\s+(?:for|about)\s+)", "", out, flags=_I)
    out = re.sub(r"\s+(?:one|item|thing)$", "", _drop_determiner(out), flags=_I)
    if not out or out.lower() in _PRONOUNS | {"that one", "it", "what", "which", "everything",
                                              "what exactly", "all of it"}:
        return None
    return out


_DONE_PATTERNS = (
    re.compile(r"\b(?:mark|check off|tick off|close|cross off)\s+(?:off\s+)?(?P<x>.+?)"
               r"(?:\s+(?:as\s+)?(?:done|complete|completed|finished|closed|off))?\s*$", _I),
    re.compile(r"^(?P<x>.+?)\s+(?:one\s+)?(?:is|are|was|were|has been|have been)"
               r"\s+(?:all\s+|already\s+|now\s+)?(?:done|finished|complete|completed|sent|"
               r"taken care of|sorted|posted|out|live|merged|shipped|fixed|submitted|booked|"
               r"signed|closed|handled|published|uploaded|paid)\b", _I),
    re.compile(r"\b(?:already|just|finally)?\s*(?:sent|finished|did|completed|booked|done with|"
               r"wrapped up|shipped|fixed|submitted|closed|handled|merged|published|emailed|"
               r"uploaded)\s+(?P<x>.+)$", _I),
)


def completed_task(text: str) -> str | None:
    """What an utterance says is done ("mark the invoice as done" -> "invoice")."""
    for pattern in _DONE_PATTERNS:
        m = pattern.search(text)
        if m is None:
            continue
        x = m.group("x")
        if pattern is _DONE_PATTERNS[1]:
            x = re.split(r"[,;]\s*", x)[-1]  # "forget that one, the checklist is finished"
        out = clean(_cut_clause(x))
        out = re.sub(r"\s+(?:yesterday|today|this morning|last night|earlier|already|now)$", "",
                     _drop_determiner(out), flags=_I)
        out = re.sub(r"\s+(?:one|item)$", "", out, flags=_I)
        if out and out.lower() not in _PRONOUNS and out.split()[0].lower() not in _PRONOUNS:
            return out
    return None
