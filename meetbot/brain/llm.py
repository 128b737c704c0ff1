"""The optional LLM brain: any OpenAI-compatible chat endpoint, with the notes as tools.

It answers addressed turns with a streamed chat completion that sees the meeting state (agenda,
time left, action items, decisions, recent transcript) and may call the same notes operations
the rule brain uses. Everything else stays with the rule brain: it listens to every turn for
notes, keeps time, and takes over a turn whenever the endpoint errors or has not started
answering by ``deadline_s`` — the meeting never stalls on a slow model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai

from meetbot.brain.rules import RuleBrain
from meetbot.config import BrainConfig
from meetbot.events import Turn
from meetbot.meeting.notes import MeetingNotes, NotesHolder
from meetbot.meeting.tools import NOTES_TOOLS, run_tool

log = logging.getLogger(__name__)

_MAX_TOOL_ROUNDS = 3
_TRANSCRIPT_LINES = 20

SYSTEM_PROMPT = """You are {name}, a voice assistant taking part in a meeting. You keep the \
agenda and the time, and record action items (what, owner, due) and decisions using the tools. \
Your replies are spoken aloud: answer in one to three short, natural sentences, no lists, no \
markdown. Confirm briefly what you wrote down."""


def chat_tools() -> list[dict[str, Any]]:
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
    ]


def meeting_state(notes: MeetingNotes, time_left_s: float | None) -> str:
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
    recent = notes.transcript[-_TRANSCRIPT_LINES:]
    if recent:
        lines.append("Recent transcript:")
        lines += [f"{t.speaker}: {t.text}" for t in recent]
    return "\n".join(lines)


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
    ) -> None:
        self._config = config
        self._store = store
        self._fallback = fallback
        self._bot_name = bot_name
        self._client = client or openai.AsyncOpenAI(
            base_url=config.base_url, api_key=config.api_key or "not-needed", max_retries=0,
            timeout=max(config.deadline_s * 4, 10.0),
        )
        self.fallbacks = 0
        """Turns the rule brain answered because the model failed or was too slow."""

    async def reply(self, turn: Turn) -> AsyncGenerator[str, None]:
        if not turn.addressed:
            async for text in self._fallback.reply(turn):  # notes only; yields nothing
                yield text
            return
        notes = self._store.notes
        time_left = self._fallback.timekeeper.remaining(time.monotonic())
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT.format(name=self._bot_name)},
            {"role": "system", "content": meeting_state(notes, time_left)},
            {"role": "user", "content": f"{turn.speaker_name}: {turn.text}"},
        ]
        try:
            stream = await asyncio.wait_for(self._first_round(messages), self._config.deadline_s)
        except (TimeoutError, openai.OpenAIError, ValueError) as exc:
            self.fallbacks += 1
            log.warning("LLM brain unavailable for this turn (%s); the rule brain answers",
                        _describe(exc))
            async for text in self._fallback.reply(turn):
                yield text
            return
        notes.add_transcript_line(turn.speaker_name, turn.text, turn.wall_time)
        try:
            async for text in self._rounds(stream, messages, turn):
                yield text
        except (TimeoutError, openai.OpenAIError) as exc:
            log.warning("LLM brain failed mid-reply: %s", _describe(exc))

    async def proactive(self, now: float) -> str | None:
        return await self._fallback.proactive(now)

    def add_participant(self, name: str) -> None:
        self._fallback.add_participant(name)

    # ---- the model conversation ------------------------------------------------------------

    async def _first_round(self, messages: list[dict[str, Any]]) -> _Stream:
        """Open the stream and wait for its first useful chunk (the deadline covers both)."""
        stream = _Stream(await self._client.chat.completions.create(
            model=self._config.model,
            messages=messages,  # type: ignore[arg-type]  # plain dicts are the wire format
            tools=chat_tools(),  # type: ignore[arg-type]
            stream=True,
        ))
        await stream.prime()
        return stream

    async def _rounds(
        self, stream: _Stream, messages: list[dict[str, Any]], turn: Turn
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
                result = run_tool(self._store.notes, c.name, "".join(c.arguments),
                                  speaker=turn.speaker_name, wall_time=turn.wall_time)
                log.info("LLM tool %s -> %s", c.name, "ok" if result.ok else result.output)
                messages.append({"role": "tool", "tool_call_id": c.id, "content": result.output})
            stream = await self._first_round(messages)


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


def _delta(chunk: Any) -> Any:
    return chunk.choices[0].delta if chunk.choices else None


def _finished(chunk: Any) -> bool:
    return bool(chunk.choices and chunk.choices[0].finish_reason)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer before the deadline"
    return f"{type(exc).__name__}: {exc}"


__all__ = ["LLMBrain", "chat_tools", "meeting_state"]
