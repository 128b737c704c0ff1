"""The optional LLM brain: any OpenAI-compatible chat endpoint, with the notes as tools.

It answers addressed turns with a streamed chat completion that sees the meeting state (agenda,
time left, action items, decisions, recent transcript) and changes the notes with the same
operations the rule brain uses. The rule brain keeps time and takes over a turn whenever the
endpoint errors or has not started answering by ``deadline_s`` — the meeting never stalls on a
slow model.

Two ways of talking to the model (``protocol``):

- ``"tools"``: the notes operations are function tools and the model calls them (streamed tool
  calls, up to a few rounds). What a hosted model does best.
- ``"json"``: the model answers one JSON object ``{"say": "...", "ops": [...]}`` constrained
  by a JSON schema (``response_format``), and ``say`` is spoken as it streams. For small local
  models and servers whose chat template has no tool calling (llama-cpp-python's server with
  Gemma 3: the GGUF has no chat template, the ``gemma`` chat format drops system and tool
  messages, and tool calls exist only under ``chatml-function-calling``, a ChatML prompt
  Gemma was not trained on). It uses only user and assistant messages, so no template can
  drop the instructions; the worked examples shown are the few most like the turn; and the
  free-text slots (titles, action items, owners) must be spans of what was said or names of
  the people in the call, so a tiny model cannot write its example's words into the notes.

Who writes the notes of an addressed turn: the model, through its tool calls or ops. When its
answer changed nothing in the notes — it asked for nothing, or nothing it asked for could be
made — the rule brain reads the turn as well (on a scratch copy, replayed as tool calls), so
"put X on the agenda" is written even when the model only said so; where the model changed
something its reading stands. When the model gives no answer in time the rule brain answers
the whole turn. An entry the notes already hold is never added twice (:func:`run_tool_once`).

Talk not meant for the bot goes to :class:`~meetbot.brain.llm_listener.LLMListener`, which
takes notes from it with the same model in the background, by the same rule.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

import openai

from meetbot.brain.rules import RuleBrain
from meetbot.config import BrainConfig
from meetbot.events import Turn
from meetbot.meeting.matching import content_words
from meetbot.meeting.notes import MeetingNotes, NotesHolder
from meetbot.meeting.tools import NOTES_TOOLS, ToolResult, run_tool

if TYPE_CHECKING:
    from meetbot.brain.llm_listener import LLMListener

log = logging.getLogger(__name__)

Protocol = Literal["tools", "json"]
PROTOCOLS: Final = ("tools", "json")

_MAX_TOOL_ROUNDS = 3
_TRANSCRIPT_LINES = 20
_JSON_MAX_TOKENS = 200
"""A JSON reply is an op or two and a sentence or two; a runaway string is cut here."""
_MAX_OPS = 6
_DUPLICATE_OVERLAP = 0.6
"""Share of content words two entries must have in common to be the same entry."""

SYSTEM_PROMPT = """You are {name}, a voice assistant taking part in a meeting. You keep the \
agenda and the time, and record action items (what, owner, due) and decisions using the tools. \
Your replies are spoken aloud: answer in one to three short, natural sentences, no lists, no \
markdown. Confirm briefly what you wrote down."""

JSON_PROMPT = """You are {name}, the voice assistant of a meeting. You keep the agenda and \
write down action items (what, owner, due), decisions and notes. Answer the last line, which \
was said to you, with one JSON object: "say" is your spoken reply in one or two short \
sentences, "ops" are the changes to the notes that the line asks for ([] when none).

"""

Example = tuple[str, dict[str, Any]]
"""A worked example: what the model is shown (ending with the line), and the right answer."""

_AGENDA_2 = ("Meeting: weekly sync\nAgenda:\n- [item-1] travel policy (pending)\n"
             "- [item-2] office party (pending)")
_AGENDA_2_ACTIVE = ("Meeting: weekly sync\nAgenda:\n- [item-1] travel policy (active)\n"
                    "- [item-2] office party (pending)")

JSON_EXAMPLES: Final[tuple[Example, ...]] = (
    ("Meeting: weekly sync\nAgenda: empty\n\nSam: Assistant, add the travel policy and the "
     "office party to the agenda.",
     {"say": "I added the travel policy and the office party to the agenda.",
      "ops": [{"op": "add_agenda_items", "titles": ["travel policy", "office party"]}]}),
    (f"{_AGENDA_2}\n\nKim: Assistant, I will order the badges by Thursday.",
     {"say": "Noted: Kim will order the badges by Thursday.",
      "ops": [{"op": "add_action_item", "text": "order the badges", "owner": "Kim",
               "due_text": "Thursday"}]}),
    (f"{_AGENDA_2}\nAction [action-1] (open): Kim: order the badges, due Thursday"
     "\n\nSam: Assistant, what are the action items?",
     {"say": "Kim will order the badges by Thursday.", "ops": []}),
    (f"{_AGENDA_2}\n\nSam: Assistant, let's start with the travel policy.",
     {"say": "Let's start with the travel policy.",
      "ops": [{"op": "start_item", "ref": "travel policy"}]}),
    (f"{_AGENDA_2_ACTIVE}\n\nKim: Assistant, we decided to cap trips at two a year.",
     {"say": "Noted the decision: cap trips at two a year.",
      "ops": [{"op": "add_decision", "text": "cap trips at two a year"}]}),
    (f"{_AGENDA_2_ACTIVE}\nDecision: cap trips at two a year"
     "\n\nSam: Assistant, what did we decide?",
     {"say": "We decided to cap trips at two a year.", "ops": []}),
    (f"{_AGENDA_2_ACTIVE}\n\nSam: Assistant, next topic please.",
     {"say": "Moving on to the office party.", "ops": [{"op": "next_item"}]}),
    (f"{_AGENDA_2}\n\nKim: Assistant, what is on the agenda?",
     {"say": "The travel policy, then the office party.", "ops": []}),
    ("Meeting: weekly sync\nAgenda: empty\n\nSam: Hey assistant, are you there?",
     {"say": "Yes, I'm here and taking notes.", "ops": []}),
)
"""A small bank; each turn is shown the few most like it (:func:`nearest_examples`)."""

_EXAMPLES_SHOWN = 3


def nearest_examples(bank: Sequence[Example], text: str, k: int = _EXAMPLES_SHOWN,
                     ) -> list[Example]:
    """The ``k`` examples whose last line shares the most words with ``text``, the most
    alike last.

    Small models copy the shape of the example nearest the end of the prompt more than they
    follow instructions; showing them the examples that fit the turn is what makes a 270M
    model's answers usable at all, and costs a large one nothing.
    """
    words = set(content_words(text))

    def likeness(example: Example) -> tuple[float, int]:
        theirs = set(content_words(example[0].rsplit("\n", 1)[-1]))
        return (len(words & theirs) / (len(words | theirs) or 1), -bank.index(example))

    return sorted(bank, key=likeness)[-k:]


def chat_tools(exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The notes tools in the chat-completions format."""
    return [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "description": t["description"],
                "parameters": t["parameters"],
            },
        }
        for t in NOTES_TOOLS
        if t["name"] not in exclude
    ]


@dataclass(frozen=True)
class Words:
    """What the free-text slots of a JSON answer may hold: spans of what was said.

    A 270M model asked for an agenda title writes the title of the worked example it was shown
    ("budget" for "the budget review"); made to choose among the spans of the line itself, it
    picks one of those. Names are the people in the meeting; refs also the agenda's titles.
    A large model loses little: notes in the speaker's own words.
    """

    spans: tuple[str, ...]
    names: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()


_SPAN_WORDS = 8
_SPAN_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


def spans_of(text: str, max_words: int = _SPAN_WORDS) -> tuple[str, ...]:
    """Every run of up to ``max_words`` words of ``text`` (punctuation trimmed at the ends)."""
    words = [w for w in (_SPAN_EDGE.sub("", w) for w in text.split()) if w]
    out: dict[str, None] = {}
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + max_words) + 1):
            out.setdefault(" ".join(words[i:j]), None)
    return tuple(out)


def _one_of(values: Sequence[str], nullable: bool = False) -> dict[str, Any]:
    choices: dict[str, Any] = {"enum": list(values)} if values else {"const": ""}
    return {"anyOf": [choices, {"type": "null"}]} if nullable else choices


_SPAN_SLOTS: Final = {"titles": "spans[]", "title": "spans", "text": "spans",
                      "due_text": "spans?", "owner": "names", "ref": "refs",
                      "speaker": "names"}
_DROPPED_SLOTS: Final = ("source", "due_date")
"""Filled in by meetbot (the line an op came from), not asked of the model."""


def ops_schema(words: Words | None = None) -> dict[str, Any]:
    """JSON schema of a list of notes operations: each tool's arguments plus ``"op"``.

    ``get_notes`` is left out: in the JSON protocol the notes are in the prompt already. With
    ``words``, the free-text slots must be spans of what was said (see :class:`Words`).
    """
    ops = []
    for tool in NOTES_TOOLS:
        if tool["name"] == "get_notes":
            continue
        params = tool["parameters"]
        props: dict[str, Any] = {}
        for name, schema in params["properties"].items():
            kind = _SPAN_SLOTS.get(name) if words is not None else None
            if words is not None and name in _DROPPED_SLOTS:
                continue
            if words is None or kind is None:
                props[name] = schema
            elif kind == "spans[]":
                props[name] = {"type": "array", "items": _one_of(words.spans), "minItems": 1,
                               "maxItems": 6}
            elif kind == "names":
                props[name] = _one_of(words.names or ("",))
            elif kind == "refs":
                props[name] = _one_of((*words.refs, *words.spans),
                                      nullable="null" in str(schema.get("type")))
            else:
                props[name] = _one_of(words.spans, nullable=kind == "spans?")
        ops.append({
            "type": "object",
            "properties": {"op": {"const": tool["name"]}, **props},
            "required": ["op", *params["required"]],
            "additionalProperties": False,
        })
    return {"type": "array", "items": {"anyOf": ops}, "maxItems": _MAX_OPS}


def words_for(notes: MeetingNotes, said: Sequence[str], names: Sequence[str]) -> Words:
    """The :class:`Words` of lines ``said`` in a meeting with ``notes`` and ``names``."""
    spans = tuple(dict.fromkeys(s for line in said for s in spans_of(line)))
    refs = tuple(dict.fromkeys([*(i.title for i in notes.agenda),
                                *(a.text for a in notes.action_items)]))
    return Words(spans=spans, names=tuple(dict.fromkeys(names)), refs=refs)


def reply_schema(words: Words | None = None) -> dict[str, Any]:
    """The JSON protocol's answer to an addressed turn: the speech, then the notes changes.

    ``say`` comes first so the bot starts talking after a handful of tokens; with the notes
    changes first a small local model took seconds more before the first word.
    """
    return {
        "type": "object",
        "properties": {"say": {"type": "string", "maxLength": 300},
                       "ops": ops_schema(words)},
        "required": ["say", "ops"],
        "additionalProperties": False,
    }


def json_response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """``response_format`` asking for JSON that follows ``schema``.

    The ``json_object`` type with a ``schema`` key is what llama-cpp-python's server (and
    llama.cpp's) turn into a grammar; it has no ``json_schema`` type.
    """
    return {"type": "json_object", "schema": schema}


def meeting_state(notes: MeetingNotes, time_left_s: float | None,
                  transcript_lines: int = _TRANSCRIPT_LINES) -> str:
    """What the model needs to know about the meeting right now, as compact text."""
    lines = [f"Meeting: {notes.title or notes.room}"]
    if notes.agenda:
        lines.append("Agenda:")
        for item in notes.agenda:
            box = f", timebox {item.timebox_s:.0f} s" if item.timebox_s else ""
            left = (
                f", {time_left_s:.0f} s left"
                if item.status == "active" and time_left_s is not None
                else ""
            )
            lines.append(f"- [{item.id}] {item.title} ({item.status}{box}{left})")
    else:
        lines.append("Agenda: empty")
    for a in notes.action_items:
        due = f", due {a.due_text}" if a.due_text else ""
        lines.append(f"Action [{a.id}] ({a.status}): {a.owner or 'no owner'}: {a.text}{due}")
    for d in notes.decisions:
        lines.append(f"Decision: {d.text}")
    recent = notes.transcript[-transcript_lines:] if transcript_lines > 0 else []
    if recent:
        lines.append("Recent transcript:")
        lines += [f"{t.speaker}: {t.text}" for t in recent]
    return "\n".join(lines)


def run_tool_once(notes: MeetingNotes, name: str, arguments: str, *, speaker: str = "",
                  wall_time: float | None = None) -> ToolResult:
    """:func:`run_tool`, except that an entry the notes already have is not added again.

    Two writers take notes from the same words — the model answering a turn, the listener's
    batch of the talk before it, the rule brain standing in for either — so an action item,
    decision or note with the same owner and nearly the same words counts as written.
    """
    if name in ("add_action_item", "add_decision", "add_note"):
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            args = None
        if isinstance(args, dict) and (existing := _existing_entry(notes, name, args)):
            return ToolResult(json.dumps({"ok": True, "already_noted": existing}), True)
    return run_tool(notes, name, arguments, speaker=speaker, wall_time=wall_time)


def _existing_entry(notes: MeetingNotes, name: str, args: dict[str, Any]) -> str | None:
    text = args.get("text")
    if not isinstance(text, str):
        return None
    if name == "add_action_item":
        owner = str(args.get("owner") or "").strip().lower()
        for a in notes.action_items:
            same_owner = not owner or not a.owner or a.owner.lower() == owner
            if same_owner and _same_words(a.text, text):
                return a.id
        return None
    entries = notes.decisions if name == "add_decision" else notes.notes
    return next((e.id for e in entries if _same_words(e.text, text)), None)


def _same_words(a: str, b: str) -> bool:
    wa, wb = set(content_words(a)), set(content_words(b))
    if not wa or not wb:
        return a.strip().lower() == b.strip().lower()
    return len(wa & wb) / len(wa | wb) >= _DUPLICATE_OVERLAP


def run_ops(notes: MeetingNotes, ops: object, *, speaker: str = "",
            wall_time: float | None = None, source: str = "") -> list[ToolResult]:
    """Apply the JSON protocol's ``ops`` (each a tool's arguments plus ``"op"``); never raises.

    ``speaker`` and ``source`` (the words an action item was taken from) fill in what the op
    leaves out."""
    results: list[ToolResult] = []
    if not isinstance(ops, list):
        return results
    for op in ops[:_MAX_OPS]:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            continue
        args = {k: v for k, v in op.items() if k != "op"}
        if op["op"] == "add_action_item" and source:
            args.setdefault("source", source)
        result = run_tool_once(notes, op["op"], json.dumps(args), speaker=speaker,
                               wall_time=wall_time)
        log.info("LLM op %s -> %s", op["op"], "ok" if result.ok else result.output)
        results.append(result)
    return results


async def open_stream(client: openai.AsyncOpenAI, **request: Any) -> Any:
    """A streamed chat completion. The request is plain JSON-like values (the wire format),
    which the SDK's typed overloads do not describe; the stream is read duck-typed."""
    create: Any = client.chat.completions.create
    return await create(stream=True, **request)


def json_messages(instructions: str, examples: Sequence[Example],
                  question: str) -> list[dict[str, Any]]:
    """User and assistant messages only: instructions, worked examples, then ``question``.

    The instructions ride in the first user message (Gemma's templates have no system role;
    llama-cpp-python's drops it). They come first, the same every time, so a local server
    reuses what it evaluated of them from one request to the next.
    """
    messages: list[dict[str, Any]] = []
    for k, (said, answer) in enumerate(examples):
        messages.append({"role": "user", "content": (instructions if k == 0 else "") + said})
        messages.append({"role": "assistant", "content": json.dumps(answer)})
    prefix = instructions if not examples else ""
    messages.append({"role": "user", "content": prefix + question})
    return messages


@dataclass
class _ToolCallDraft:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class LLMBrain:
    """Implements :class:`meetbot.brain.base.Brain` with a chat model and rule-brain fallback."""

    def __init__(
        self,
        config: BrainConfig,
        store: NotesHolder,
        fallback: RuleBrain,
        bot_name: str = "assistant",
        client: openai.AsyncOpenAI | None = None,
        *,
        protocol: str = "tools",
        listen: bool = True,
        listen_batch_lines: int = 3,
        listen_wait_s: float = 3.0,
        listen_deadline_s: float | None = None,
    ) -> None:
        """``protocol``: ``"tools"`` or ``"json"`` (see the module). With ``listen`` the
        model also takes the notes of talk not meant for the bot, in batches of
        ``listen_batch_lines`` lines or after ``listen_wait_s``; a batch without an answer by
        ``listen_deadline_s`` (default: three times ``config.deadline_s``) goes to the rule
        brain. Without it the rule brain takes those notes, as it does with no model."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown LLM protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
        self._config = config
        self._store = store
        self._fallback = fallback
        self._bot_name = bot_name
        self.protocol: Protocol = "json" if protocol == "json" else "tools"
        self._client = client or openai.AsyncOpenAI(
            base_url=config.base_url, api_key=config.api_key or "not-needed", max_retries=0,
            timeout=max(config.deadline_s * 4, 10.0),
        )
        self.fallbacks = 0
        """Turns the rule brain answered because the model failed or was too slow."""
        self.mended = 0
        """Turns the model answered without changing the notes, in which the rule brain then
        found something to write down."""
        self._people: dict[str, None] = {}
        """Everyone heard or seen in the call, in order (the JSON protocol's owner names)."""
        self.listener: LLMListener | None = None
        if listen:
            from meetbot.brain.llm_listener import LLMListener

            self.listener = LLMListener(
                self._client, config.model, store, fallback, bot_name=bot_name,
                protocol=self.protocol, batch_lines=listen_batch_lines, wait_s=listen_wait_s,
                deadline_s=listen_deadline_s or config.deadline_s * 3,
            )

    async def reply(self, turn: Turn) -> AsyncGenerator[str, None]:
        if not turn.addressed:
            if self.listener is not None:
                self.listener.hear(turn)  # returns at once: the model reads it in the back
                return
            async for text in self._fallback.reply(turn):  # notes only; yields nothing
                yield text
            return
        listener = self.listener
        if listener is None:
            async for text in self._answer(turn, []):
                yield text
            return
        # The talk the listener has not written down yet goes with this turn (the model
        # notes it while answering), and no batch competes with the reply for the model.
        with listener.hold() as earlier:
            async for text in self._answer(turn, earlier):
                yield text

    async def _answer(self, turn: Turn, earlier: list[Turn]) -> AsyncIterator[str]:
        notes = self._store.notes
        time_left = self._fallback.timekeeper.remaining(time.monotonic())
        answer = self._json_answer if self.protocol == "json" else self._tools_answer
        started = False
        try:
            async for text in answer(turn, earlier, notes, time_left):
                started = True
                yield text
        except _NoAnswer as exc:
            if started:  # pragma: no cover - _NoAnswer is only raised before the first text
                return
            self.fallbacks += 1
            log.warning("LLM brain unavailable for this turn (%s); the rule brain answers",
                        _describe(exc.cause))
            if earlier and self.listener is not None:
                self.listener.rules_take(earlier)
            async for text in self._fallback.reply(turn):
                yield text

    def _rules_take(self, turns: Sequence[Turn]) -> int:
        """The rule brain's notes of lines the model did not manage (see llm_listener);
        how many changes it made."""
        if not turns:
            return 0
        from meetbot.brain.llm_listener import rule_notes

        names = [*self._people, *(self.listener.names if self.listener is not None else ())]
        return rule_notes(self._store.notes, self._bot_name, list(dict.fromkeys(names)), turns)

    def _mend_if_unchanged(self, results: Sequence[ToolResult], turns: Sequence[Turn]) -> None:
        """A turn the model answered without changing the notes — nothing asked for, or
        nothing it asked for could be made (a 270M model answers "put X on the agenda" with
        "next item" on an empty agenda) — is read by the rule brain as well, so what the
        speaker asked for is written down. Where the model changed something, its reading
        stands."""
        if any(r.change is not None for r in results):
            return
        if self._rules_take(turns):
            self.mended += 1
            log.info("the LLM changed nothing for this turn; the rule brain's notes of it "
                     "were taken")

    async def proactive(self, now: float) -> str | None:
        return await self._fallback.proactive(now)

    def add_participant(self, name: str) -> None:
        if name and name != self._bot_name:
            self._people.setdefault(name, None)
        self._fallback.add_participant(name)
        if self.listener is not None:
            self.listener.add_participant(name)

    async def warm_up(self) -> None:
        """Have the server evaluate the fixed start of the prompts once, before anyone talks.

        A local server keeps what it evaluated of a prompt's beginning; on two busy cores the
        JSON protocol's instructions and examples took a 270M model 5-10 s the first time, past
        any reply deadline. Errors are logged, not raised: the rule brain is there anyway.
        """
        if self.protocol != "json":
            return
        question = meeting_state(self._store.notes, None, transcript_lines=0)
        messages = json_messages(JSON_PROMPT.format(name=self._bot_name),
                                 nearest_examples(JSON_EXAMPLES, ""), question)
        try:
            create: Any = self._client.chat.completions.create
            await create(model=self._config.model, messages=messages, max_tokens=1)
        except openai.OpenAIError as exc:
            log.warning("LLM warm-up failed: %s", _describe(exc))

    async def close(self) -> None:
        """Write down what the listener still holds (before the notes are closed)."""
        if self.listener is not None:
            await self.listener.close()

    # ---- the tools protocol ----------------------------------------------------------------

    async def _tools_answer(self, turn: Turn, earlier: list[Turn], notes: MeetingNotes,
                            time_left: float | None) -> AsyncIterator[str]:
        said = f"{turn.speaker_name}: {turn.text}"
        if earlier:
            said = (_earlier_text(earlier) + "\n\nNow, said to you:\n" + said)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT.format(name=self._bot_name)},
            {"role": "system", "content": meeting_state(notes, time_left)},
            {"role": "user", "content": said},
        ]
        try:
            stream = await asyncio.wait_for(self._first_round(messages), self._config.deadline_s)
        except (TimeoutError, openai.OpenAIError, ValueError) as exc:
            raise _NoAnswer(exc) from exc
        notes.add_transcript_line(turn.speaker_name, turn.text, turn.wall_time)
        results: list[ToolResult] = []
        try:
            async for text in self._rounds(stream, messages, turn, results):
                yield text
        except (TimeoutError, openai.OpenAIError) as exc:
            log.warning("LLM brain failed mid-reply: %s", _describe(exc))
        self._mend_if_unchanged(results, [*earlier, turn])

    async def _first_round(self, messages: list[dict[str, Any]]) -> _Stream:
        """Open the stream and wait for its first useful chunk (the deadline covers both)."""
        stream = _Stream(await open_stream(
            self._client, model=self._config.model, messages=messages, tools=chat_tools(),
            # Explicit: llama-cpp-python's chatml-function-calling ignores tools without it.
            tool_choice="auto",
        ))
        await stream.prime()
        return stream

    async def _rounds(
        self, stream: _Stream, messages: list[dict[str, Any]], turn: Turn,
        results: list[ToolResult],
    ) -> AsyncIterator[str]:
        for _ in range(_MAX_TOOL_ROUNDS):
            async for text in stream.text():
                yield text
            calls = stream.tool_calls()
            if not calls:
                return
            messages.append({
                "role": "assistant",
                "content": stream.content or None,
                "tool_calls": [
                    {"id": c.id, "type": "function",
                     "function": {"name": c.name, "arguments": "".join(c.arguments)}}
                    for c in calls
                ],
            })
            for c in calls:
                result = run_tool_once(self._store.notes, c.name, "".join(c.arguments),
                                       speaker=turn.speaker_name, wall_time=turn.wall_time)
                log.info("LLM tool %s -> %s", c.name, "ok" if result.ok else result.output)
                results.append(result)
                messages.append({"role": "tool", "tool_call_id": c.id, "content": result.output})
            stream = await self._first_round(messages)

    # ---- the JSON protocol -----------------------------------------------------------------

    async def _json_answer(self, turn: Turn, earlier: list[Turn], notes: MeetingNotes,
                           time_left: float | None) -> AsyncIterator[str]:
        question = meeting_state(notes, time_left, transcript_lines=6)
        if earlier:
            question += "\n\n" + _earlier_text(earlier)
        question += f"\n\n{turn.speaker_name}: {turn.text}"
        messages = json_messages(JSON_PROMPT.format(name=self._bot_name),
                                 nearest_examples(JSON_EXAMPLES, turn.text), question)
        for t in (*earlier, turn):
            self.add_participant(t.speaker_name)
        words = words_for(notes, [t.text for t in (*earlier, turn)], list(self._people))
        reply = _JsonReply()
        try:
            await asyncio.wait_for(self._open_json(messages, reply, words),
                                   self._config.deadline_s)
        except (TimeoutError, openai.OpenAIError, ValueError) as exc:
            await reply.aclose()
            raise _NoAnswer(exc) from exc
        notes.add_transcript_line(turn.speaker_name, turn.text, turn.wall_time)
        try:
            async for text in reply.say_text():
                yield text
        except (TimeoutError, openai.OpenAIError) as exc:
            log.warning("LLM brain failed mid-reply: %s", _describe(exc))
            return
        finally:
            await reply.aclose()
        answer = reply.parsed()
        log.debug("LLM answer: %s", reply.raw)
        if answer is None:
            log.warning("LLM reply was not the JSON asked for: %.200r", reply.raw)
            return
        results = run_ops(self._store.notes, answer.get("ops"), speaker=turn.speaker_name,
                          wall_time=turn.wall_time, source=turn.text)
        self._mend_if_unchanged(results, [*earlier, turn])

    async def _open_json(self, messages: list[dict[str, Any]], reply: _JsonReply,
                         words: Words) -> None:
        response = await open_stream(
            self._client, model=self._config.model, messages=messages,
            response_format=json_response_format(reply_schema(words)),
            max_tokens=_JSON_MAX_TOKENS, temperature=0,
        )
        reply.attach(response)
        await reply.prime()


class _NoAnswer(Exception):
    """The model gave nothing to say before the deadline: the rule brain takes the turn."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _earlier_text(earlier: Sequence[Turn]) -> str:
    lines = "\n".join(f"{t.speaker_name}: {t.text}" for t in earlier)
    return f"Said before, not yet in the notes (write down what matters in it too):\n{lines}"


class _Stream:
    """One streamed chat completion: text deltas as they come, tool calls assembled."""

    def __init__(self, response: Any) -> None:
        self._it = response.__aiter__()
        self._buffered: list[Any] = []
        self._calls: dict[int, _ToolCallDraft] = {}
        self.content = ""

    async def prime(self) -> None:
        """Wait until the model has said something (text or a tool call) or finished."""
        async for chunk in self._it:
            self._buffered.append(chunk)
            delta = _delta(chunk)
            if delta is None or delta.content or delta.tool_calls or _finished(chunk):
                return

    async def text(self) -> AsyncIterator[str]:
        while self._buffered:
            text = self._take(self._buffered.pop(0))
            if text:
                yield text
        async for chunk in self._it:
            text = self._take(chunk)
            if text:
                yield text

    def tool_calls(self) -> list[_ToolCallDraft]:
        return [self._calls[k] for k in sorted(self._calls) if self._calls[k].name]

    def _take(self, chunk: Any) -> str:
        delta = _delta(chunk)
        if delta is None:
            return ""
        for tc in delta.tool_calls or []:
            draft = self._calls.setdefault(tc.index, _ToolCallDraft())
            if tc.id:
                draft.id = tc.id
            if tc.function is not None:
                draft.name += tc.function.name or ""
                draft.arguments.append(tc.function.arguments or "")
        text = delta.content or ""
        self.content += text
        return text


class _JsonReply:
    """A streamed JSON answer whose ``"say"`` string is spoken while it is still coming."""

    def __init__(self) -> None:
        self._response: Any = None
        self._it: AsyncIterator[Any] | None = None
        self._say = JsonStringField("say")
        self._pending = ""
        self._done = False
        self.raw = ""

    def attach(self, response: Any) -> None:
        self._response = response
        self._it = response.__aiter__()

    async def prime(self) -> None:
        """Read until the spoken text begins (or the answer ends): the deadline covers this."""
        while not self._pending and not self._done:
            await self._read()

    async def say_text(self) -> AsyncIterator[str]:
        """The spoken text as it comes, up to its first line break: a reply is one paragraph,
        and a small model that starts a new line is writing the meeting's next lines."""
        cut = False
        while True:
            if self._pending and not cut:
                text, self._pending = self._pending, ""
                if "\n" in text:
                    text, cut = text.split("\n", 1)[0], True
                if text:
                    yield text
            self._pending = "" if cut else self._pending
            if self._done:
                return
            await self._read()

    async def _read(self) -> None:
        assert self._it is not None
        try:
            chunk = await self._it.__anext__()
        except StopAsyncIteration:
            self._done = True
            return
        delta = _delta(chunk)
        piece = (delta.content or "") if delta is not None else ""
        self.raw += piece
        self._pending += self._say.feed(piece)

    def parsed(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def aclose(self) -> None:
        close = getattr(self._response, "close", None)
        if close is not None:
            try:
                await close()
            except Exception:  # closing a broken stream must not hide why it broke
                log.debug("closing the LLM stream failed", exc_info=True)


_ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n",
                   "r": "\r", "t": "\t"}


class JsonStringField:
    """Decodes one top-level string field of a JSON object as its text streams in.

    Feeding the answer piece by piece returns the new characters of the field's value, so the
    reply can be spoken before the model has finished the object.
    """

    def __init__(self, name: str) -> None:
        self._key = re.compile(r'"' + re.escape(name) + r'"\s*:\s*"')
        self._buffer = ""
        self._pos: int | None = None
        self.closed = False

    def feed(self, piece: str) -> str:
        self._buffer += piece
        if self.closed:
            return ""
        if self._pos is None:
            m = self._key.search(self._buffer)
            if m is None:
                return ""
            self._pos = m.end()
        out: list[str] = []
        buf, i = self._buffer, self._pos
        while i < len(buf):
            ch = buf[i]
            if ch == '"':
                self.closed = True
                i += 1
                break
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            if i + 1 >= len(buf):
                break  # the escape is cut between pieces: wait for the rest
            esc = buf[i + 1]
            if esc == "u":
                if i + 6 > len(buf):
                    break
                try:
                    out.append(chr(int(buf[i + 2:i + 6], 16)))
                except ValueError:
                    pass
                i += 6
                continue
            out.append(_ESCAPES.get(esc, esc))
            i += 2
        self._pos = i
        return "".join(out)


def _delta(chunk: Any) -> Any:
    return chunk.choices[0].delta if chunk.choices else None


def _finished(chunk: Any) -> bool:
    return bool(chunk.choices and chunk.choices[0].finish_reason)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer before the deadline"
    return f"{type(exc).__name__}: {exc}"


__all__ = [
    "JSON_EXAMPLES",
    "LLMBrain",
    "Words",
    "chat_tools",
    "json_response_format",
    "meeting_state",
    "nearest_examples",
    "open_stream",
    "ops_schema",
    "reply_schema",
    "run_ops",
    "run_tool_once",
    "spans_of",
    "words_for",
]
