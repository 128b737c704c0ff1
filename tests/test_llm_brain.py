"""The LLM brain against a local OpenAI-compatible server: streamed tool calls change the notes,
and a slow or failing endpoint hands the turn to the rule brain."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from meetbot.brain.llm import LLMBrain
from meetbot.brain.rules import RuleBrain
from meetbot.config import BrainConfig
from meetbot.events import Turn
from meetbot.meeting.store import NotesStore
from tests.support.fake_openai_chat import FakeChatServer, Move


def _turn(text: str, speaker: str = "Dana", addressed: bool = True) -> Turn:
    now = time.monotonic()
    return Turn(speaker, speaker, text, addressed, now - 1, now, time.time())


def _meeting_model(messages: list[dict[str, Any]]) -> list[Move]:
    """A scripted model: acts with tools on the user's words, then confirms in speech."""
    last = messages[-1]
    if last["role"] == "tool":
        result = json.loads(last["content"])
        return ["Done, ", "I wrote that down."] if result["ok"] else ["That did not work."]
    said = last["content"].lower()
    if "agenda" in said:
        return [{"name": "add_agenda_items",
                 "arguments": {"titles": ["hiring plan", "office move"]}}]
    if "will" in said:
        return [{"name": "add_action_item",
                 "arguments": {"text": "send the offer letter", "owner": "Lee",
                               "due_text": "Friday"}}]
    return ["Sure."]


@pytest.fixture
async def chat() -> AsyncIterator[FakeChatServer]:
    server = await FakeChatServer(_meeting_model).start()
    try:
        yield server
    finally:
        await server.close()


def _brain(server: FakeChatServer, tmp_path: Path, deadline_s: float = 3.0) -> LLMBrain:
    store = NotesStore.for_room(tmp_path, "llm")
    rules = RuleBrain(store, "assistant", record_own_replies=False)
    config = BrainConfig(kind="llm", base_url=server.base_url, api_key="test",
                         model="meeting-model", deadline_s=deadline_s)
    return LLMBrain(config, store, fallback=rules)


async def test_tool_calls_create_agenda_and_action_items(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    brain = _brain(chat, tmp_path)
    reply = "".join([t async for t in brain.reply(
        _turn("Assistant, put the hiring plan and the office move on the agenda"))])
    assert reply == "Done, I wrote that down."
    notes = brain._store.notes
    assert [i.title for i in notes.agenda] == ["hiring plan", "office move"]
    reply = "".join([t async for t in brain.reply(
        _turn("Assistant, Lee will send the offer letter by Friday", speaker="Lee"))])
    assert "wrote that down" in reply
    assert [(a.owner, a.text, a.due_text) for a in notes.action_items] == [
        ("Lee", "send the offer letter", "Friday")]
    # The model saw the meeting state and the tools; the turn is in the transcript.
    first, second = chat.requests[0], chat.requests[2]
    assert {t["function"]["name"] for t in first["tools"]} >= {"add_agenda_items",
                                                             "add_action_item"}
    assert "hiring plan" in second["messages"][1]["content"]
    assert [line.speaker for line in notes.transcript] == ["Dana", "Lee"]
    assert brain.fallbacks == 0


async def test_unaddressed_turns_stay_with_the_rule_brain(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    brain = _brain(chat, tmp_path)
    said = [t async for t in brain.reply(
        _turn("we decided to move the launch to March", addressed=False))]
    assert said == []
    assert chat.requests == []  # no model call for a turn not meant for the bot
    assert [d.text for d in brain._store.notes.decisions] == ["move the launch to March"]


async def test_slow_endpoint_falls_back_to_rules_in_time(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    chat.delay_s = 5.0
    brain = _brain(chat, tmp_path, deadline_s=0.5)
    started = time.monotonic()
    reply = " ".join([t async for t in brain.reply(_turn("Hey assistant, can you hear me?"))])
    assert time.monotonic() - started < 2.0
    assert reply  # the rule brain answered
    assert brain.fallbacks == 1


async def test_failing_endpoint_falls_back_to_rules(chat: FakeChatServer, tmp_path: Path) -> None:
    chat.status = 500
    brain = _brain(chat, tmp_path)
    reply = " ".join([t async for t in brain.reply(
        _turn("Assistant, add the budget review to the agenda"))])
    assert "budget" in reply.lower()
    assert [i.title.lower() for i in brain._store.notes.agenda] == ["budget review"]
    assert brain.fallbacks == 1
