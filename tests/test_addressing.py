"""Is an utterance meant for the bot? Its name, as a small speech model hears it."""

from __future__ import annotations

import pytest

from meetbot.addressing import Addressing


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Hey assistant, can you help us stay on track today?", True),
        ("A assistant, what's next?", True),
        ("hey assistance what is next", True),
        ("Can the assistant take a note?", True),
        ("Assessant, what are our action items?", True),  # a call at the start: looser
        ("Hey Assessant, what's next?", True),
        ("Assisting what is on the agenda?", True),  # the call run into the next word
        ("Instant messaging is down.", False),
        ("Distant teams need better audio.", False),
        ("The assessment is done.", False),
        ("Resistant to change, that team.", False),
        ("Assess the numbers, then tell me.", False),
        ("We need to discuss the Q3 budget.", False),
        ("Yes, let's move on.", False),
        ("", False),
    ],
)
def test_the_bots_name_is_heard_through_small_mishearings(text: str, named: bool) -> None:
    assert Addressing("assistant").mentions_bot(text) is named


def test_a_misheard_call_addresses_the_bot_in_a_group() -> None:
    addressing = Addressing("assistant")
    assert addressing.decide("dana", "Assessant, what decisions have we made?", 3, 0.0)
    assert not addressing.decide("lee", "Marketing is ten percent over.", 3, 1.0)


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("Hey assistant, can you help us?", "Hey assistant"),
        ("Assistant.", "Assistant"),
        ("hand assistant", "hand assistant"),
        ("Okay assistant, what's next?", "Okay assistant"),
        ("Can the assistant take a note?", None),  # named, but not called at the start
        ("Let's move on.", None),
    ],
)
def test_the_call_an_utterance_opens_with(text: str, call: str | None) -> None:
    assert Addressing("assistant").leading_call(text) == call
