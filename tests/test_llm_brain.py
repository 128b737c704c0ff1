"""The LLM brain against a local OpenAI-compatible server: streamed tool calls (or schema-bound
JSON) change the notes, talk not meant for the bot is noted by the model in the background, and
a slow or failing endpoint hands the work to the rule brain."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from meetbot.brain.llm import JsonStringField, LLMBrain, run_tool_once
from meetbot.brain.rules import RuleBrain
from meetbot.config import BrainConfig
from meetbot.events import Turn
from meetbot.meeting.notes import MeetingNotes
from meetbot.meeting.store import NotesStore
from tests.support.fake_openai_chat import FakeChatServer, Move


def _turn(text: str, speaker: str = "Dana", addressed: bool = True) -> Turn:
    now = time.monotonic()
    return Turn(speaker, speaker, text, addressed, now - 1, now, time.time())


def _is_listen(body: dict[str, Any]) -> bool:
    """A listener batch (lines said between people), not an addressed turn."""
    return "New lines:" in body["messages"][-1]["content"]


def _meeting_model(messages: list[dict[str, Any]]) -> list[Move]:
    """A scripted model: acts with tools on the user's words, then confirms in speech."""
    last = messages[-1]
    if last["role"] == "tool":
        result = json.loads(last["content"])
        return ["Done, ", "I wrote that down."] if result["ok"] else ["That did not work."]
    said = last["content"].lower()
    if "new lines:" in said:  # the listener: notes only
        moves: list[Move] = []
        if "offer letter" in said:
            moves.append({"name": "add_action_item",
                          "arguments": {"text": "send the offer letter", "owner": "Lee",
                                        "due_text": "Friday"}})
        if "decided" in said:
            moves.append({"name": "add_decision",
                          "arguments": {"text": "move the launch to March"}})
        return moves
    if "agenda" in said:
        return [{"name": "add_agenda_items",
                 "arguments": {"titles": ["hiring plan", "office move"]}}]
    if "will" in said:
        return [{"name": "add_action_item",
                 "arguments": {"text": "send the offer letter", "owner": "Lee",
                               "due_text": "Friday"}}]
    if "offer letter" in said:  # an earlier line came with the turn: note it while answering
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


def _brain(server: FakeChatServer, tmp_path: Path, deadline_s: float = 3.0,
           **kwargs: Any) -> LLMBrain:
    store = NotesStore.for_room(tmp_path, "llm")
    rules = RuleBrain(store, "assistant", record_own_replies=False)
    config = BrainConfig(kind="llm", base_url=server.base_url, api_key="test",
                         model="meeting-model", deadline_s=deadline_s)
    return LLMBrain(config, store, fallback=rules, **kwargs)


async def _say(brain: LLMBrain, text: str, speaker: str = "Dana",
               addressed: bool = True) -> str:
    return "".join([t async for t in brain.reply(_turn(text, speaker, addressed))])


async def test_tool_calls_create_agenda_and_action_items(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    brain = _brain(chat, tmp_path)
    reply = await _say(brain, "Assistant, put the hiring plan and the office move on the agenda")
    assert reply == "Done, I wrote that down."
    notes = brain._store.notes
    assert [i.title for i in notes.agenda] == ["hiring plan", "office move"]
    reply = await _say(brain, "Assistant, Lee will send the offer letter by Friday", "Lee")
    assert "wrote that down" in reply
    assert [(a.owner, a.text, a.due_text) for a in notes.action_items] == [
        ("Lee", "send the offer letter", "Friday")]
    # The model saw the meeting state and the tools; the turn is in the transcript.
    first, second = chat.requests[0], chat.requests[2]
    assert {t["function"]["name"] for t in first["tools"]} >= {"add_agenda_items",
                                                             "add_action_item"}
    assert first["tool_choice"] == "auto"
    assert "hiring plan" in second["messages"][1]["content"]
    assert [line.speaker for line in notes.transcript] == ["Dana", "Lee"]
    assert brain.fallbacks == 0


async def test_without_listening_unaddressed_turns_stay_with_the_rule_brain(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    brain = _brain(chat, tmp_path, listen=False)
    said = await _say(brain, "we decided to move the launch to March", addressed=False)
    assert said == ""
    assert chat.requests == []  # no model call for a turn not meant for the bot
    assert [d.text for d in brain._store.notes.decisions] == ["move the launch to March"]


async def test_unaddressed_talk_is_noted_by_the_model_in_batches(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    brain = _brain(chat, tmp_path, listen_batch_lines=3, listen_wait_s=30.0)
    listener = brain.listener
    assert listener is not None
    notes = brain._store.notes
    started = time.monotonic()
    await _say(brain, "so we decided to move the launch to March", "Dana", addressed=False)
    await _say(brain, "okay. I will send the offer letter by Friday", "Lee", addressed=False)
    assert time.monotonic() - started < 0.05  # hearing never waits for the model
    await asyncio.sleep(0.2)
    assert chat.requests == []  # two lines: the batch is not full yet
    assert [line.text for line in notes.transcript][-1].endswith("by Friday")  # live anyway
    await _say(brain, "sounds good", "Dana", addressed=False)
    await listener.flush()
    assert len(chat.requests) == 1  # one batch for three lines
    sent = chat.requests[0]["messages"][-1]["content"]
    assert "Lee: okay. I will send the offer letter by Friday" in sent
    assert [(a.owner, a.text, a.due_text) for a in notes.action_items] == [
        ("Lee", "send the offer letter", "Friday")]
    assert notes.action_items[0].speaker == "Lee"  # taken from Lee's line
    # The model wins: the rule brain, which would also have noted the decision, wrote nothing.
    assert [d.text for d in notes.decisions] == ["move the launch to March"]
    assert listener.stats.model_batches == 1
    assert listener.stats.rules_batches == 0


async def test_a_lone_line_is_sent_after_the_wait(chat: FakeChatServer, tmp_path: Path) -> None:
    brain = _brain(chat, tmp_path, listen_batch_lines=3, listen_wait_s=0.3)
    await _say(brain, "we decided to move the launch to March", addressed=False)
    await asyncio.sleep(0.1)
    assert chat.requests == []
    await asyncio.sleep(0.5)
    assert len(chat.requests) == 1
    assert brain.listener is not None
    await brain.listener.flush()
    assert [d.text for d in brain._store.notes.decisions] == ["move the launch to March"]


async def test_one_batch_in_flight_at_most(chat: FakeChatServer, tmp_path: Path) -> None:
    chat.delay_s = 0.3
    brain = _brain(chat, tmp_path, listen_batch_lines=2, listen_wait_s=30.0)
    for k in range(6):
        await _say(brain, f"line {k} about the budget", "Dana", addressed=False)
    await asyncio.sleep(0.1)
    assert len(chat.requests) == 1  # six lines, but the first batch is still out
    assert brain.listener is not None
    await brain.listener.flush()
    assert chat.max_in_flight == 1
    assert brain.listener.stats.model_lines == 6
    assert len(chat.requests) == 2  # what queued behind the first batch went as one


async def test_slow_batch_goes_to_the_rule_brain(chat: FakeChatServer, tmp_path: Path) -> None:
    chat.delay_for = lambda body: 5.0 if _is_listen(body) else 0.0
    brain = _brain(chat, tmp_path, listen_batch_lines=1, listen_deadline_s=0.5)
    started = time.monotonic()
    await _say(brain, "we decided to move the launch to March", addressed=False)
    assert brain.listener is not None
    await brain.listener.flush()
    assert time.monotonic() - started < 2.0
    assert [d.text for d in brain._store.notes.decisions] == ["move the launch to March"]
    assert brain.listener.stats.rules_batches == 1
    assert brain.listener.stats.model_batches == 0


async def test_failing_batch_goes_to_the_rule_brain(chat: FakeChatServer, tmp_path: Path) -> None:
    chat.status = 500
    brain = _brain(chat, tmp_path, listen_batch_lines=1)
    brain.add_participant("Lee")  # in the call, not yet heard
    await _say(brain, "Lee will send the offer letter by Friday", "Dana", addressed=False)
    assert brain.listener is not None
    await brain.listener.flush()
    notes = brain._store.notes
    assert [(a.owner, a.text) for a in notes.action_items] == [("Lee", "send the offer letter")]
    assert [line.text for line in notes.transcript] == [
        "Lee will send the offer letter by Friday"]  # once: the rule brain did not add it
    assert brain.listener.stats.rules_batches == 1


async def test_a_batch_in_flight_never_delays_a_reply(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    chat.delay_for = lambda body: 5.0 if _is_listen(body) else 0.0
    brain = _brain(chat, tmp_path, listen_batch_lines=1, listen_deadline_s=30.0)
    await _say(brain, "I will send the offer letter by Friday", "Lee", addressed=False)
    await asyncio.sleep(0.1)
    assert len(chat.requests) == 1  # the batch is out, and slow
    started = time.monotonic()
    reply = await _say(brain, "Assistant, anything else?")
    assert time.monotonic() - started < 1.5
    assert reply == "Done, I wrote that down."
    # The batch was called off and its line went with the addressed turn, whose model noted it.
    listener = brain.listener
    assert listener is not None
    assert listener.stats.called_off == 1
    said = chat.requests[1]["messages"][-1]["content"]
    assert "Lee: I will send the offer letter by Friday" in said
    assert said.endswith("Dana: Assistant, anything else?")
    await listener.flush()
    await asyncio.sleep(0.1)
    assert chat.cancelled == 1  # the server was told: the batch's request was dropped
    notes = brain._store.notes
    assert [(a.owner, a.text) for a in notes.action_items] == [("Lee", "send the offer letter")]
    assert listener.stats.rules_batches == 0


async def test_a_batch_called_off_before_it_ran_leaves_the_listener_working(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    brain = _brain(chat, tmp_path, listen_batch_lines=1)
    listener = brain.listener
    assert listener is not None
    # The batch is created and called off by the addressed turn before it gets to run.
    async for _ in brain.reply(_turn("so we decided to move the launch to March",
                                     addressed=False)):
        pass
    assert await _say(brain, "Assistant, anything else?")
    await asyncio.wait_for(listener.flush(), 2.0)
    await _say(brain, "okay. I will send the offer letter by Friday", "Lee", addressed=False)
    await asyncio.wait_for(listener.flush(), 2.0)
    assert [(a.owner, a.text) for a in brain._store.notes.action_items] == [
        ("Lee", "send the offer letter")]


async def test_earlier_lines_go_to_the_rule_brain_when_the_reply_does(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    chat.status = 500
    brain = _brain(chat, tmp_path, listen_batch_lines=5, listen_wait_s=30.0)
    await _say(brain, "we decided to move the launch to March", addressed=False)
    reply = await _say(brain, "Assistant, what did we decide?")
    assert "march" in reply.lower()  # the rule brain had the decision before it answered
    assert [d.text for d in brain._store.notes.decisions] == ["move the launch to March"]
    assert brain.fallbacks == 1


async def test_close_writes_down_what_is_left(chat: FakeChatServer, tmp_path: Path) -> None:
    brain = _brain(chat, tmp_path, listen_batch_lines=5, listen_wait_s=30.0)
    await _say(brain, "so we decided to move the launch to March", addressed=False)
    await brain.close()
    assert [d.text for d in brain._store.notes.decisions] == ["move the launch to March"]
    assert brain.listener is not None and brain.listener.stats.model_batches == 1


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


# ---- the JSON protocol ------------------------------------------------------------------------


def _pieces(value: dict[str, Any], size: int = 7) -> list[Move]:
    """A JSON answer streamed in small pieces, cutting through keys and escapes."""
    text = json.dumps(value)
    return [text[k:k + size] for k in range(0, len(text), size)]


def _json_model(messages: list[dict[str, Any]]) -> list[Move]:
    said = messages[-1]["content"]
    if "New lines:" in said:
        lines = said.rsplit("New lines:", 1)[1]
        if "offer letter" in lines:
            return _pieces({"ops": [{"op": "add_action_item", "text": "send the offer letter",
                                     "owner": "Lee", "due_text": "Friday"}]})
        if "garbage" in lines:
            return ['{"ops": [{"op": "add_dec']  # cut off: not JSON
        return _pieces({"ops": []})
    if "office move" in said:  # what a 270M model does: an op that cannot apply
        return _pieces({"say": "The office move is on the agenda.", "ops": [{"op": "next_item"}]})
    return _pieces({"say": 'Added the "hiring plan" to the agenda.\nAnything else?',
                    "ops": [{"op": "add_agenda_items", "titles": ["hiring plan"]}]})


async def test_json_protocol_speaks_the_say_field_and_applies_the_ops(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    chat.script = _json_model
    brain = _brain(chat, tmp_path, protocol="json")
    pieces = [t async for t in brain.reply(_turn("Assistant, add the hiring plan to the agenda"))]
    # Spoken up to the first line break: what a small model writes after one is not a reply.
    assert "".join(pieces) == 'Added the "hiring plan" to the agenda.'
    assert len(pieces) > 3  # spoken as it streamed, not after the whole answer
    assert [i.title for i in brain._store.notes.agenda] == ["hiring plan"]
    request = chat.requests[0]
    assert request["response_format"]["type"] == "json_object"
    schema = request["response_format"]["schema"]
    assert list(schema["properties"]) == ["say", "ops"]  # speech first: it starts sooner
    assert "tools" not in request
    # Only user and assistant messages: no chat template can drop the instructions.
    assert {m["role"] for m in request["messages"]} == {"user", "assistant"}
    assert "Assistant, add the hiring plan" in request["messages"][-1]["content"]
    assert brain.fallbacks == 0


async def test_json_op_that_cannot_apply_gets_the_rule_brain_to_read_the_turn(
    chat: FakeChatServer, tmp_path: Path
) -> None:
    chat.script = _json_model
    brain = _brain(chat, tmp_path, protocol="json", listen=False)
    reply = await _say(brain, "Assistant, put the office move on the agenda")
    assert reply == "The office move is on the agenda."  # the model's reply is what is said
    assert [i.title for i in brain._store.notes.agenda] == ["office move"]  # the rules' note
    assert brain.mended == 1 and brain.fallbacks == 0
    assert [line.text for line in brain._store.notes.transcript] == [
        "Assistant, put the office move on the agenda"]


async def test_json_protocol_listener(chat: FakeChatServer, tmp_path: Path) -> None:
    chat.script = _json_model
    brain = _brain(chat, tmp_path, protocol="json", listen_batch_lines=1)
    listener = brain.listener
    assert listener is not None
    await _say(brain, "I will send the offer letter by Friday", "Lee", addressed=False)
    await listener.flush()
    await _say(brain, "how was the weekend", "Dana", addressed=False)
    await listener.flush()
    notes = brain._store.notes
    assert [(a.owner, a.text, a.speaker) for a in notes.action_items] == [
        ("Lee", "send the offer letter", "Lee")]
    assert listener.stats.model_batches == 2
    # An answer that is not the JSON asked for: the rule brain takes that batch.
    await _say(brain, "garbage, we decided to move the launch to March", addressed=False)
    await listener.flush()
    assert [d.text for d in notes.decisions] == ["move the launch to March"]
    assert listener.stats.rules_batches == 1


def test_json_string_field_decodes_as_it_streams() -> None:
    field = JsonStringField("say")
    text = json.dumps({"ops": [{"op": "add_note", "text": "say: \"no\""}],
                       "say": "Tab\there, \"quoted\", caf\u00e9 \\ done"}, ensure_ascii=True)
    out = "".join(field.feed(text[k:k + 3]) for k in range(0, len(text), 3))
    assert out == "Tab\there, \"quoted\", caf\u00e9 \\ done"
    assert field.closed


def test_an_entry_already_in_the_notes_is_not_added_again() -> None:
    notes = MeetingNotes()
    args = json.dumps({"text": "send the offer letter", "owner": "Lee"})
    assert run_tool_once(notes, "add_action_item", args).ok
    again = run_tool_once(notes, "add_action_item",
                          json.dumps({"text": "Send the offer letter.", "owner": "lee"}))
    assert again.ok and "already_noted" in again.output
    other = run_tool_once(notes, "add_action_item",
                          json.dumps({"text": "send the offer letter", "owner": "Kim"}))
    assert other.ok and "already_noted" not in other.output
    assert [a.owner for a in notes.action_items] == ["Lee", "Kim"]
    assert run_tool_once(notes, "add_decision", json.dumps({"text": "go with vendor B"})).ok
    run_tool_once(notes, "add_decision", json.dumps({"text": "we go with vendor B"}))
    assert len(notes.decisions) == 1
