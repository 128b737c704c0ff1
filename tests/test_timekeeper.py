"""The timekeeper speaks up at the right moment, once, in words a person would use."""

from __future__ import annotations

import pytest

from meetbot.meeting.notes import MeetingNotes
from meetbot.meeting.spoken import (
    find_durations,
    number_words,
    parse_number,
    say_duration,
    say_remaining,
)
from meetbot.meeting.timekeeper import Timekeeper, TimekeeperConfig

WALL0 = 1_714_557_600.0


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return WALL0 + self.t


def _meeting(timebox_s: float | None, *titles: str) -> tuple[MeetingNotes, Timekeeper, Clock]:
    clock = Clock()
    notes = MeetingNotes()
    tk = Timekeeper(notes, clock=clock, wall_clock=clock.wall)
    notes.add_agenda_items(list(titles or ("Q3 budget discussion", "product launch planning")))
    notes.start_item("item-1", wall_time=clock.wall())
    if timebox_s is not None:
        notes.set_timebox(timebox_s)
    return notes, tk, clock


def _first_due(tk: Timekeeper, clock: Clock, until: float, step: float = 0.25,
               speak: bool = True) -> tuple[str | None, float]:
    """Advance the clock until something is due; returns (sentence, time since start)."""
    start = clock.t
    while clock.t - start < until:
        clock.t += step
        said = tk.due(clock.t)
        if said:
            if speak:
                tk.mark_spoken()
            return said, clock.t
    return None, clock.t


def test_thirty_second_box_reminds_at_ten_seconds_left_then_time_is_up() -> None:
    _, tk, clock = _meeting(30)
    t0 = clock.t
    said, at = _first_due(tk, clock, 60)
    assert said == ("We have ten seconds left for the Q3 budget discussion. "
                    "Should we move to the product launch planning?")
    assert at - t0 == pytest.approx(20.0)
    said, at = _first_due(tk, clock, 60)
    assert said == ("Time is up for the Q3 budget discussion. "
                    "Shall we move on to the product launch planning?")
    assert at - t0 == pytest.approx(30.0)
    assert _first_due(tk, clock, 600)[0] is None, "each cue only once"


def test_thirty_minute_box_reminds_at_ten_minutes_left() -> None:
    _, tk, clock = _meeting(1800)
    t0 = clock.t
    said, at = _first_due(tk, clock, 3600, step=1.0)
    assert said is not None and said.startswith("We have ten minutes left")
    assert at - t0 == pytest.approx(1200.0)


def test_threshold_is_configurable() -> None:
    clock = Clock()
    notes = MeetingNotes()
    tk = Timekeeper(notes, TimekeeperConfig(reminder_fraction=0.1, min_reminder_s=60),
                    clock=clock, wall_clock=clock.wall)
    notes.add_agenda_items(["budget"])
    notes.start_item("budget")
    notes.set_timebox(1200)
    said, at = _first_due(tk, clock, 3600, step=1.0)
    assert said is not None and "two minutes left" in said
    assert at - 100.0 == pytest.approx(1080.0)


def test_last_item_asks_to_wrap_up() -> None:
    _, tk, clock = _meeting(60, "budget")
    said, _ = _first_due(tk, clock, 100)
    assert said == "We have twenty seconds left for the budget. Let's start wrapping up."
    said, _ = _first_due(tk, clock, 100)
    assert said == "Time is up for the budget. Shall we wrap up?"


def test_short_box_gets_only_time_up() -> None:
    _, tk, clock = _meeting(15)
    said, at = _first_due(tk, clock, 60)
    assert said is not None and said.startswith("Time is up")
    assert at - 100.0 == pytest.approx(15.0)


def test_no_timebox_or_no_active_item_says_nothing() -> None:
    notes, tk, clock = _meeting(None)
    assert _first_due(tk, clock, 600, step=5)[0] is None
    assert tk.remaining(clock.t) is None
    notes.next_item()
    notes.next_item()
    assert tk.due(clock.t + 10_000) is None


def test_cue_stays_due_until_spoken_and_defer_holds_it_back() -> None:
    _, tk, clock = _meeting(30)
    clock.t += 20.0
    first = tk.due(clock.t)
    assert first is not None and "ten seconds left" in first
    clock.t += 0.5
    assert tk.due(clock.t) is not None, "not spoken yet: still due"
    tk.defer(clock.t, retry_after_s=2.0)
    assert tk.due(clock.t + 1.0) is None
    clock.t += 2.5  # people were talking; by now 7 s are left and the sentence says so
    again = tk.due(clock.t)
    assert again is not None and "seven seconds left" in again
    tk.mark_spoken()
    assert tk.due(clock.t + 1) is None


def test_a_reminder_held_back_too_long_gives_way_to_time_up() -> None:
    _, tk, clock = _meeting(30)
    clock.t += 28.0  # 2 s left: too late for "two seconds left"
    assert tk.due(clock.t) is None
    clock.t += 2.0
    said = tk.due(clock.t)
    assert said is not None and said.startswith("Time is up")


def test_changing_the_timebox_rearms_the_cues() -> None:
    notes, tk, clock = _meeting(30)
    _first_due(tk, clock, 60)
    said, _ = _first_due(tk, clock, 60)
    assert said is not None and said.startswith("Time is up")
    notes.set_timebox(30 + 120)  # "two more minutes"
    assert tk.remaining(clock.t) == pytest.approx(120.0)
    said, _at = _first_due(tk, clock, 300)
    assert said is not None and "fifty seconds left" in said
    said, _ = _first_due(tk, clock, 300)
    assert said is not None and said.startswith("Time is up")


def test_timebox_set_late_skips_a_reminder_already_past() -> None:
    notes, tk, clock = _meeting(None)
    clock.t += 100
    notes.set_timebox(105)  # 5 s left already: no "five seconds left", just time up
    said, _at = _first_due(tk, clock, 30)
    assert said is not None and said.startswith("Time is up")


def test_moving_on_starts_the_next_items_clock() -> None:
    notes, tk, clock = _meeting(30)
    clock.t += 25
    notes.next_item(wall_time=clock.wall())
    notes.set_timebox(60)
    assert tk.remaining(clock.t) == pytest.approx(60.0)
    said, _at = _first_due(tk, clock, 100)
    assert said == "We have twenty seconds left for the product launch planning. Let's start " \
                   "wrapping up."


def test_restart_maps_the_item_start_from_wall_time() -> None:
    notes, _, clock = _meeting(120)
    clock.t += 50
    # a new timekeeper (restarted bot) with a different monotonic origin
    later = Clock()
    later.t = 9.0
    wall_now = clock.wall()
    tk2 = Timekeeper(notes, clock=later, wall_clock=lambda: wall_now + (later.t - 9.0))
    assert tk2.remaining(later.t) == pytest.approx(70.0)
    said, at = _first_due(tk2, later, 100)
    assert said is not None and "forty seconds left" in said
    assert at - 9.0 == pytest.approx(30.0)


# --------------------------------------------------------------------------- spoken numbers


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "zero"), (10, "ten"), (21, "twenty-one"), (100, "one hundred"),
     (342, "three hundred and forty-two"), (2005, "two thousand and five")],
)
def test_number_words(n: int, words: str) -> None:
    assert number_words(n) == words
    assert parse_number(words) == n


@pytest.mark.parametrize(
    ("seconds", "spoken"),
    [(1, "one second"), (30, "thirty seconds"), (60, "one minute"), (90, "ninety seconds"),
     (150, "two and a half minutes"), (1200, "twenty minutes"), (3600, "one hour"),
     (5400, "an hour and a half"), (4500, "one hour and fifteen minutes")],
)
def test_say_duration(seconds: float, spoken: str) -> None:
    assert say_duration(seconds) == spoken


@pytest.mark.parametrize(("left", "spoken"), [(9.7, "ten seconds"), (7.2, "seven seconds"),
                                              (23, "twenty-five seconds"), (599, "ten minutes")])
def test_say_remaining_rounds_like_a_person(left: float, spoken: str) -> None:
    assert say_remaining(left) == spoken


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("thirty seconds", 30), ("30 seconds", 30), ("30s", 30), ("5 min", 300),
     ("twenty-five minutes", 1500), ("twenty five minutes", 1500), ("half an hour", 1800),
     ("an hour and a half", 5400), ("one minute and thirty seconds", 90),
     ("a couple of minutes", 120), ("1.5 hours", 5400), ("two and a half minutes", 150)],
)
def test_find_durations(text: str, seconds: float) -> None:
    found = find_durations(f"let's give it {text} please")
    assert [d.seconds for d in found] == [seconds]


def test_find_durations_ignores_lookalikes() -> None:
    assert find_durations("tens of people, a message, one step") == []
    assert find_durations("two more minutes")[0].extra
    assert find_durations("another five minutes")[0].extra
