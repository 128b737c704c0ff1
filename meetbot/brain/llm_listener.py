"""Notes from the talk not meant for the bot, taken by the model in the background.

With a model configured, the lines people say to each other are written down by the model
too, not only by the rule brain. The model is slow next to the meeting (a small local one
takes seconds, a hosted one has a network in between), so the lines go in batches and nothing
waits for them:

- :meth:`LLMListener.hear` records the line in the transcript and returns at once; a batch is
  sent when ``batch_lines`` lines are waiting, or ``wait_s`` after the first of them.
- At most one batch is in flight. While the bot answers someone (:meth:`LLMListener.hold`) no
  batch is sent, and the one in flight is called off: its lines and those still waiting go
  with the addressed turn, whose model call notes them while it answers. A local server has
  one slot — llama-cpp-python's even cuts a running stream off for a new request — so a batch
  must never stand between a person and the bot's reply.

Who writes what — the model first. With a listener, the rule brain writes nothing from
unaddressed lines on its own. It reads a batch only when the model did not manage it: an
error, no answer within ``deadline_s``, an answer that is not what was asked for, or an
answer that changed nothing in the notes (no change, or none that could be made — a 270M
model answers "next item" on an empty agenda); and it reads the lines that went with an
addressed turn when that turn fell back to it. Where the model changed something, its reading
stands and the rule brain adds nothing. The rule brain reads on a scratch copy of the notes,
and its changes are replayed onto the real notes as tool calls (as meetbot's offline Realtime
server does), so both writers go through the same operations. Whoever writes second, an entry
the notes already hold (same owner, nearly the same words) is not added again
(:func:`~meetbot.brain.llm.run_tool_once`). Addressed turns follow the same rule
(:class:`~meetbot.brain.llm.LLMBrain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from meetbot.brain.llm import (
    Example,
    Protocol,
    _Stream,
    chat_tools,
    json_messages,
    json_response_format,
    meeting_state,
    nearest_examples,
    open_stream,
    ops_schema,
    run_ops,
    run_tool_once,
    words_for,
)
from meetbot.brain.rules import RuleBrain
from meetbot.events import Turn
from meetbot.meeting.matching import best_title_match
from meetbot.meeting.notes import InMemoryNotes, MeetingNotes, NoteChange, NotesHolder
from meetbot.meeting.tools import change_to_call

log = logging.getLogger(__name__)

_CONTEXT_LINES = 4
"""Earlier unaddressed lines the model sees with a batch, so "that" and "it" can be read."""
_LISTEN_MAX_TOKENS = 160
_CLOSE_WAIT_S = 3.0

LISTEN_PROMPT = """You are {name}, the note-taker of a meeting. The new lines below were said \
between the participants, not to you: do not answer them. Write down what they contain: \
action items someone takes on or is given (what, owner, due), decisions made, agenda items \
added, moving to another agenda item. Write nothing for small talk or questions."""

_LISTEN_JSON_PROMPT = LISTEN_PROMPT + """ Answer with one JSON object: "ops" are the changes \
to the notes ([] when there is nothing to write down).

"""

_LISTEN_EXAMPLES: tuple[Example, ...] = (
    ("Agenda: empty\n\nNew lines:\nKim: okay so I'll order the badges by Thursday.\n"
     "Sam: great, thanks.",
     {"ops": [{"op": "add_action_item", "text": "order the badges", "owner": "Kim",
               "due_text": "Thursday"}]}),
    ("Agenda: empty\n\nNew lines:\nSam: how was your weekend?\nKim: good, we went hiking.",
     {"ops": []}),
    ("Agenda:\n- [item-1] travel policy (active)\n- [item-2] office party (pending)\n\n"
     "New lines:\nLee: so we decided to cap trips at two a year.\n"
     "Kim: let's move on to the next topic.",
     {"ops": [{"op": "add_decision", "text": "cap trips at two a year"}, {"op": "next_item"}]}),
    ("Agenda: empty\n\nNew lines:\nSam: today we need to cover the travel policy and the "
     "office party.",
     {"ops": [{"op": "add_agenda_items", "titles": ["travel policy", "office party"]}]}),
)


@dataclass
class ListenerStats:
    """What happened to the unaddressed lines (tests and logs read it)."""

    lines: int = 0
    model_batches: int = 0
    model_lines: int = 0
    rules_batches: int = 0
    rules_lines: int = 0
    mended: int = 0
    """Batches the model answered without changing the notes, in which the rule brain found
    something to write down."""
    called_off: int = 0
    """Batches in flight when someone called the bot (their lines went with that turn)."""
    batch_s: list[float] = field(default_factory=list)
    """How long each answered model batch took."""


class LLMListener:
    """Takes notes from unaddressed turns with a chat model, batched, in the background."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        store: NotesHolder,
        rules: RuleBrain,
        *,
        bot_name: str = "assistant",
        protocol: Protocol = "tools",
        batch_lines: int = 3,
        wait_s: float = 3.0,
        deadline_s: float = 12.0,
        close_wait_s: float = _CLOSE_WAIT_S,
    ) -> None:
        """``rules`` is the session's rule brain: it learns the speakers' names from here,
        since it no longer hears these turns itself."""
        self._client = client
        self._model = model
        self._store = store
        self._rules = rules
        self._bot_name = bot_name
        self._protocol = protocol
        self._batch_lines = max(1, batch_lines)
        self._wait_s = wait_s
        self._deadline_s = deadline_s
        self._close_wait_s = close_wait_s
        self._queue: list[Turn] = []
        self._queued_since = 0.0
        self._in_flight: list[Turn] = []
        self._sent: deque[Turn] = deque(maxlen=_CONTEXT_LINES)
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._holds = 0
        self._closed = False
        self._names: list[str] = []
        self.stats = ListenerStats()

    # ---- what the brain calls ----------------------------------------------------------------

    def hear(self, turn: Turn) -> None:
        """A turn not meant for the bot: into the transcript now, into the notes later."""
        text = turn.text.strip()
        if not text:
            return
        self._store.notes.add_transcript_line(turn.speaker_name, text, turn.wall_time)
        self.add_participant(turn.speaker_name)
        self.stats.lines += 1
        if self._closed:
            self.rules_take([turn])
            return
        if not self._queue:
            self._queued_since = time.monotonic()
        self._queue.append(turn)
        self._maybe_send()

    @property
    def names(self) -> tuple[str, ...]:
        """The people heard or seen in the call so far."""
        return tuple(self._names)

    def add_participant(self, name: str) -> None:
        if name and name != self._bot_name and name not in self._names:
            self._names.append(name)
            self._rules.add_participant(name)

    @contextlib.contextmanager
    def hold(self) -> Iterator[list[Turn]]:
        """While the bot answers: send no batch, call off the one in flight, and hand over
        every line not yet written down (in the order said) to go with the addressed turn."""
        self._holds += 1
        earlier = [*self._in_flight, *self._queue]
        self._queue.clear()
        self._in_flight = []
        self._cancel_timer()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            self.stats.called_off += 1
        try:
            yield earlier
        finally:
            self._holds -= 1
            self._maybe_send()

    def rules_take(self, turns: Sequence[Turn]) -> int:
        """The rule brain writes down ``turns`` (already in the transcript) for the model;
        how many changes it made."""
        if not turns:
            return 0
        made = rule_notes(self._store.notes, self._bot_name, self._names, turns)
        self.stats.rules_batches += 1
        self.stats.rules_lines += len(turns)
        return made

    async def flush(self) -> None:
        """Send what is waiting now and wait until every line heard so far is written down."""
        while self._queue or self._task is not None:
            if self._task is None:
                self._send()
            task = self._task
            if task is not None:
                await asyncio.wait({task})

    async def close(self) -> None:
        """Give the model a moment for what is left, then the rule brain takes the rest."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), self._close_wait_s)
        self._closed = True
        self._cancel_timer()
        left = [*self._in_flight, *self._queue]
        self._in_flight, self._queue = [], []
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.rules_take(left)

    # ---- batches ---------------------------------------------------------------------------

    def _maybe_send(self) -> None:
        if self._task is not None or self._holds or self._closed or not self._queue:
            return
        waited = time.monotonic() - self._queued_since
        if len(self._queue) >= self._batch_lines or waited >= self._wait_s:
            self._send()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._wait_s - waited, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._maybe_send()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self) -> None:
        self._cancel_timer()
        batch, self._queue = self._queue, []
        self._in_flight = batch
        context = list(self._sent)
        self._sent.extend(batch)
        task = asyncio.get_running_loop().create_task(self._run(batch, context),
                                                      name="llm-listen")
        self._task = task
        task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        """The batch is over, answered or called off (a task cancelled before it ever ran
        runs none of its own code, so the listener is told here)."""
        if self._task is task:
            self._task = None
        if not task.cancelled() and task.exception() is not None:
            log.error("LLM listener batch failed", exc_info=task.exception())
        self._maybe_send()

    async def _run(self, batch: list[Turn], context: list[Turn]) -> None:
        started = time.monotonic()
        try:
            changed = await asyncio.wait_for(self._ask_model(batch, context), self._deadline_s)
            done = changed is not None
            if not done:
                log.warning("LLM listener: the model's answer was not usable; the rule brain "
                            "takes %d line(s)", len(batch))
        except (TimeoutError, openai.OpenAIError, ValueError) as exc:
            what = "no answer in time" if isinstance(exc, TimeoutError) else repr(exc)
            log.warning("LLM listener: %s; the rule brain takes %d line(s)", what, len(batch))
            done = changed = False
        except asyncio.CancelledError:
            return  # called off: whoever cancelled took the lines
        if self._in_flight is batch:
            self._in_flight = []
            if done:
                self.stats.model_batches += 1
                self.stats.model_lines += len(batch)
                self.stats.batch_s.append(time.monotonic() - started)
                if not changed and rule_notes(self._store.notes, self._bot_name, self._names,
                                              batch):
                    self.stats.mended += 1
            else:
                self.rules_take(batch)

    async def _ask_model(self, batch: list[Turn], context: list[Turn]) -> bool | None:
        """One model call for ``batch``; its notes changes are applied when it has answered
        (all at once, so calling the batch off never leaves half of them). True: the notes
        changed; False: the model's answer changed nothing (nothing to note, or nothing it
        asked for could be made); None: the answer was not usable."""
        notes = self._store.notes
        question = meeting_state(notes, None, transcript_lines=0)
        if context:
            question += "\n\nSaid before:\n" + _lines(context)
        question += "\n\nNew lines:\n" + _lines(batch)
        if self._protocol == "json":
            ops = await self._json_ops(question, batch)
            if ops is None:
                return None
        else:
            ops = await self._tool_ops(question)
        if self._in_flight is not batch:
            return True  # called off while the answer was read: the lines went elsewhere
        changed = False
        for op in ops:
            turn = _who_said(op, batch)
            results = run_ops(notes, [op], speaker=turn.speaker_name, wall_time=turn.wall_time,
                              source=turn.text)
            changed = changed or any(r.change is not None for r in results)
        return changed

    async def _json_ops(self, question: str, batch: Sequence[Turn],
                        ) -> list[dict[str, Any]] | None:
        lines = question.rsplit("New lines:", 1)[-1]
        messages = json_messages(_LISTEN_JSON_PROMPT.format(name=self._bot_name),
                                 nearest_examples(_LISTEN_EXAMPLES, lines, k=2), question)
        words = words_for(self._store.notes, [t.text for t in batch], self._names)
        schema = {"type": "object", "properties": {"ops": ops_schema(words)},
                  "required": ["ops"], "additionalProperties": False}
        response = await open_stream(
            self._client, model=self._model, messages=messages,
            response_format=json_response_format(schema), max_tokens=_LISTEN_MAX_TOKENS,
            temperature=0,
        )
        stream = _Stream(response)
        async for _ in stream.text():
            pass
        try:
            answer = json.loads(stream.content)
        except ValueError:
            log.info("LLM listener answer is not JSON: %.200r", stream.content)
            return None
        ops = answer.get("ops") if isinstance(answer, dict) else None
        if not isinstance(ops, list):
            return None
        return [op for op in ops if isinstance(op, dict) and isinstance(op.get("op"), str)]

    async def _tool_ops(self, question: str) -> list[dict[str, Any]]:
        response = await open_stream(
            self._client, model=self._model,
            messages=[
                {"role": "system", "content": LISTEN_PROMPT.format(name=self._bot_name)},
                {"role": "user", "content": question},
            ],
            tools=chat_tools(exclude=("get_notes",)), tool_choice="auto",
        )
        stream = _Stream(response)
        async for _ in stream.text():
            pass
        ops: list[dict[str, Any]] = []
        for call in stream.tool_calls():
            raw = "".join(call.arguments)
            try:
                args = json.loads(raw) if raw.strip() else {}
            except ValueError:
                log.info("LLM listener: tool %s arguments are not JSON: %.200r", call.name, raw)
                continue
            if isinstance(args, dict):
                ops.append({**args, "op": call.name})
        return ops


def rule_notes(notes: MeetingNotes, bot_name: str, names: Sequence[str],
               turns: Sequence[Turn]) -> int:
    """The rule brain's notes of ``turns`` (already in the transcript), written onto ``notes``.

    It reads them on a scratch copy of the notes, as it would have live (an addressed turn's
    reply is thrown away), and each change it makes there is replayed onto the real notes as
    the tool call that makes it; what the notes already hold is not added again. Returns
    how many changes were made.
    """
    made = 0
    scratch_notes = MeetingNotes.from_dict(notes.to_dict(transcript_limit=0))
    scratch = RuleBrain(InMemoryNotes(scratch_notes), bot_name, record_own_replies=False)
    for name in names:
        scratch.add_participant(name)
    for turn in turns:
        changes: list[NoteChange] = []
        unsubscribe = scratch_notes.subscribe(changes.append)
        try:
            scratch.handle(turn)
        finally:
            unsubscribe()
        for change in changes:
            call = change_to_call(change)
            if call is not None:
                result = run_tool_once(notes, call.name, call.arguments_json,
                                       speaker=turn.speaker_name, wall_time=turn.wall_time)
                if not result.ok:
                    log.info("rule note %s did not apply: %s", call.name, result.output)
                made += result.change is not None
    return made


def _lines(turns: Sequence[Turn]) -> str:
    return "\n".join(f"{t.speaker_name}: {t.text}" for t in turns)


def _who_said(op: dict[str, Any], batch: Sequence[Turn]) -> Turn:
    """The batch line an op was taken from (most words in common; the last line if none)."""
    words = " ".join(str(v) for k, v in op.items() if k != "op" and isinstance(v, str | list))
    speaker = op.get("speaker")
    if isinstance(speaker, str):
        by_speaker = [t for t in batch if t.speaker_name.lower() == speaker.lower()]
        if len(by_speaker) == 1:
            return by_speaker[0]
    found = best_title_match(words, [(t, t.text) for t in batch]) if words else None
    return found or batch[-1]


__all__ = ["LISTEN_PROMPT", "LLMListener", "ListenerStats", "rule_notes"]
