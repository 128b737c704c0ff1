"""End-of-turn judgement from the words at a pause."""

from __future__ import annotations

import pytest

from meetbot.turn_end import TurnEnd, is_reaction, judge_turn_end


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Hey assistant, can you help us stay on track today?", TurnEnd.COMPLETE),
        ("Yes, let's move on.", TurnEnd.COMPLETE),
        ("Assistant, I will post the job description by Monday.", TurnEnd.COMPLETE),
        ("Thanks, assistant.", TurnEnd.COMPLETE),  # short, but said to the bot
        ("Assistant,", TurnEnd.CONTINUES),
        ("Hey assistant.", TurnEnd.CONTINUES),  # only the name: the request follows
        ("hand assistant", TurnEnd.CONTINUES),  # Whisper's "Hey assistant": still the name last
        ("Assistant, stop.", TurnEnd.COMPLETE),
        ("Assistant, budget.", TurnEnd.UNSURE),  # short; the name first: silence decides
        ("Marketing is ten percent over,", TurnEnd.CONTINUES),
        ("We need to discuss the budget and", TurnEnd.CONTINUES),
        ("Let's start with the", TurnEnd.CONTINUES),
        ("So, um", TurnEnd.CONTINUES),
        ("I think we should...", TurnEnd.CONTINUES),
        ("Yes.", TurnEnd.UNSURE),  # as often "Yes, let's ..." as an answer
        ("Okay.", TurnEnd.UNSURE),
        ("", TurnEnd.UNSURE),
    ],
)
def test_judge_turn_end(text: str, verdict: TurnEnd) -> None:
    assert judge_turn_end(text, ("assistant",)) is verdict


@pytest.mark.parametrize(
    ("text", "reaction"),
    [
        ("Stop.", True),
        ("Thanks, assistant.", True),
        ("Okay, got it.", True),
        ("Never mind.", True),
        ("The budget request and hiring.", False),  # more of the turn being answered
        ("No, the budget first.", False),  # a correction carries words of its own
        ("And hiring.", False),
        ("Assistant.", False),  # only the name: nothing said back
        ("", False),
    ],
)
def test_is_reaction(text: str, reaction: bool) -> None:
    assert is_reaction(text, ("assistant",)) is reaction
