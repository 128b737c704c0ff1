"""Meeting notes: the model's ops, persistence that survives crashes, exports, the CLI, dates."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meetbot.meeting.cli_notes import add_notes_parser, main, run_notes
from meetbot.meeting.dates import find_due, resolve_due
from meetbot.meeting.export import short_duration, to_markdown, write_exports
from meetbot.meeting.notes import MeetingNotes, NoteChange, NotesError
from meetbot.meeting.store import (
    JOURNAL,
    NOTES_JSON,
    NOTES_MD,
    NotesStore,
    StoreError,
    list_meetings,
    load_notes,
    read_journal,
    room_dir,
)

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp()  # a Wednesday


def _seed_notes(notes: MeetingNotes) -> None:
    notes.add_agenda_items(["Q3 budget discussion", "product launch planning"])
    notes.start_item("the budget", wall_time=T0 + 10)
    notes.set_timebox(30)
    notes.add_decision("cut the events line", "Lee", T0 + 20)
    notes.next_item(wall_time=T0 + 45)
    notes.add_action_item("draft the launch announcement", "Lee", due_text="Friday",
                          due_date="2024-05-03", source="I will draft the launch announcement "
                          "by Friday.", speaker="Lee", wall_time=T0 + 50)
    notes.add_transcript_line("Dana", "Hey assistant", T0 + 1)
    notes.add_transcript_line("assistant", "Of course!", T0 + 2, is_bot=True)


# --------------------------------------------------------------------------- the model


def test_ops_return_changes_that_listeners_see() -> None:
    notes = MeetingNotes()
    seen: list[NoteChange] = []
    unsubscribe = notes.subscribe(seen.append)
    change = notes.add_agenda_items(["budget", "launch"])
    assert change.op == "add_agenda_items"
    assert [i["id"] for i in change.payload["items"]] == ["item-1", "item-2"]
    notes.start_item("launch", wall_time=T0)
    assert [c.op for c in seen] == ["add_agenda_items", "start_item"]
    unsubscribe()
    notes.next_item(wall_time=T0 + 1)
    assert len(seen) == 2


def test_agenda_flow_statuses_and_times() -> None:
    notes = MeetingNotes()
    notes.add_agenda_items(["budget", "launch", "hiring"])
    notes.start_item("item-1", wall_time=T0)
    notes.next_item(wall_time=T0 + 60)
    assert [i.status for i in notes.agenda] == ["done", "active", "pending"]
    assert notes.agenda[0].ended_at_wall == T0 + 60
    assert notes.agenda[1].started_at_wall == T0 + 60
    back = notes.previous_item(wall_time=T0 + 70)
    assert back.payload["id"] == "item-1"
    assert [i.status for i in notes.agenda] == ["active", "pending", "pending"]
    assert notes.agenda[0].ended_at_wall is None
    notes.next_item(wall_time=T0 + 80)
    notes.start_item("hiring", wall_time=T0 + 90)  # jump forward: launch counts as done
    assert [i.status for i in notes.agenda] == ["done", "done", "active"]
    notes.start_item("launch", wall_time=T0 + 95)  # jump back: hiring returns to pending
    assert [i.status for i in notes.agenda] == ["done", "active", "pending"]
    notes.next_item(wall_time=T0 + 100)
    end = notes.next_item(wall_time=T0 + 110)
    assert end.payload["id"] is None
    assert all(i.status == "done" for i in notes.agenda)
    with pytest.raises(NotesError):
        notes.next_item()


def test_ops_refuse_what_cannot_apply() -> None:
    notes = MeetingNotes()
    with pytest.raises(NotesError, match="no active agenda item"):
        notes.set_timebox(60)
    notes.add_agenda_items(["budget"])
    with pytest.raises(NotesError, match="matches"):
        notes.start_item("weather")
    with pytest.raises(NotesError):
        notes.set_timebox(-5, "budget")
    with pytest.raises(NotesError):
        notes.previous_item()
    with pytest.raises(NotesError):
        notes.add_action_item("  ")


def test_duplicate_titles_are_skipped() -> None:
    notes = MeetingNotes()
    notes.add_agenda_items(["Q3 budget discussion"])
    change = notes.add_agenda_items(["the q3 budget discussion", "launch", "Launch"])
    assert [i["title"] for i in change.payload["items"]] == ["launch"]
    assert [i.id for i in notes.agenda] == ["item-1", "item-2"]


def test_complete_action_item_by_words() -> None:
    notes = MeetingNotes()
    notes.add_action_item("draft the launch announcement", "Lee")
    notes.add_action_item("book the room", "Dana")
    notes.complete_action_item("the room booking")
    assert [a.status for a in notes.action_items] == ["open", "done"]
    assert [a.text for a in notes.open_action_items()] == ["draft the launch announcement"]


def test_to_dict_matches_the_room_page_schema_and_round_trips() -> None:
    notes = MeetingNotes(title="Weekly", room="team", started_at_wall=T0)
    _seed_notes(notes)
    notes.add_note("the numbers are preliminary", "Dana", T0 + 60)
    d = notes.to_dict()
    assert list(d) == ["title", "room", "started_at_wall", "agenda", "action_items",
                       "decisions", "notes", "transcript"]
    assert list(d["agenda"][0]) == ["id", "title", "timebox_s", "status", "started_at_wall",
                                    "ended_at_wall"]
    assert list(d["action_items"][0]) == ["id", "text", "owner", "due_text", "due_date",
                                          "status", "speaker", "source", "wall_time"]
    assert list(d["decisions"][0]) == ["id", "text", "speaker", "wall_time"]
    assert list(d["transcript"][0]) == ["speaker", "text", "wall_time", "is_bot"]
    again = MeetingNotes.from_dict(json.loads(json.dumps(d)))
    assert again.to_dict() == d
    assert notes.to_dict(transcript_limit=1)["transcript"] == [d["transcript"][-1]]


def test_from_dict_rejects_malformed_notes() -> None:
    with pytest.raises(ValueError, match="agenda"):
        MeetingNotes.from_dict({"agenda": "nope"})
    with pytest.raises(ValueError, match="status"):
        MeetingNotes.from_dict({"agenda": [{"id": "item-1", "title": "x", "status": "late"}]})
    with pytest.raises(ValueError, match="unknown note operation"):
        NoteChange.from_dict({"op": "drop_table", "payload": {}})


# --------------------------------------------------------------------------- the store


def test_every_change_is_on_disk_when_the_op_returns(tmp_path: Path) -> None:
    store = NotesStore(tmp_path / "team", wall_clock=lambda: T0)
    journal = tmp_path / "team" / JOURNAL
    store.notes.add_agenda_items(["budget"])
    lines = journal.read_text().splitlines()
    assert [json.loads(x)["op"] for x in lines] == ["create", "add_agenda_items"]
    store.notes.add_decision("cut the events line", "Lee", T0)
    assert json.loads(journal.read_text().splitlines()[-1])["payload"]["text"] == (
        "cut the events line")
    # snapshots follow structural changes at once
    assert json.loads((tmp_path / "team" / NOTES_JSON).read_text())["decisions"][0]["text"] == (
        "cut the events line")
    store.close()


def test_crash_with_a_torn_last_line_loses_only_that_line(tmp_path: Path) -> None:
    store = NotesStore(tmp_path / "team", wall_clock=lambda: T0)
    _seed_notes(store.notes)
    expected = store.notes.to_dict()
    journal = tmp_path / "team" / JOURNAL
    # simulate the process dying mid-write: no close(), half a line at the end
    with open(journal, "ab") as f:
        f.write(b'{"op":"add_decision","payload":{"id":"decision-2","te')
    os.close(store._fd)  # the dead process's file descriptor (and lock) go away
    store._fd = -1

    read = read_journal(journal)
    assert read.torn and read.notes.to_dict() == expected

    reopened = NotesStore.open(tmp_path / "team")
    assert reopened.notes.to_dict() == expected
    assert reopened.replayed_entries == len(journal.read_text().splitlines())
    reopened.notes.add_decision("go with the blue design", "Dana", T0 + 70)
    reopened.close()
    final = load_notes(tmp_path / "team")
    assert [d.text for d in final.decisions] == ["cut the events line", "go with the blue design"]
    assert all(json.loads(line) for line in journal.read_text().splitlines())


def test_corruption_before_the_end_is_an_error_not_silence(tmp_path: Path) -> None:
    store = NotesStore(tmp_path / "team", wall_clock=lambda: T0)
    _seed_notes(store.notes)
    store.close()
    journal = tmp_path / "team" / JOURNAL
    lines = journal.read_text().splitlines()
    lines[2] = "garbage"
    journal.write_text("\n".join(lines) + "\n")
    with pytest.raises(StoreError, match=r"journal.jsonl:3"):
        NotesStore(tmp_path / "team")


def test_restarted_store_continues_the_same_notes(tmp_path: Path) -> None:
    with NotesStore.for_room(tmp_path, "team", title="Weekly sync", wall_clock=lambda: T0) as s:
        _seed_notes(s.notes)
    with NotesStore.for_room(tmp_path, "team", title="ignored on reopen") as s:
        assert s.notes.title == "Weekly sync"
        assert s.notes.active_item() is not None
        assert s.notes.active_item().title == "product launch planning"  # type: ignore[union-attr]
        s.notes.add_action_item("book the room", "Dana", wall_time=T0 + 99)
        assert [a.id for a in s.notes.action_items] == ["action-1", "action-2"]
    notes = load_notes(tmp_path / "team")
    assert [a.text for a in notes.action_items] == ["draft the launch announcement",
                                                    "book the room"]


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with NotesStore(tmp_path / "team"), pytest.raises(StoreError, match="another process"):
        NotesStore(tmp_path / "team")


def test_store_subscribers_hear_durable_changes(tmp_path: Path) -> None:
    store = NotesStore(tmp_path / "team")
    heard: list[tuple[str, int]] = []
    journal = tmp_path / "team" / JOURNAL

    def on_change(change: NoteChange) -> None:
        heard.append((change.op, len(journal.read_text().splitlines())))

    store.subscribe(on_change)
    store.notes.add_agenda_items(["budget"])
    assert heard == [("add_agenda_items", 2)]
    store.close()


def test_transcript_snapshots_are_rate_limited_but_close_writes_them(tmp_path: Path) -> None:
    now = [0.0]
    store = NotesStore(tmp_path / "team", monotonic=lambda: now[0], snapshot_interval_s=5.0)
    md = tmp_path / "team" / NOTES_MD
    store.notes.add_transcript_line("Dana", "first line", T0)
    store.notes.add_transcript_line("Dana", "second line", T0 + 1)
    assert "second line" not in md.read_text()
    now[0] = 6.0
    store.notes.add_transcript_line("Dana", "third line", T0 + 2)
    assert "third line" in md.read_text()
    store.notes.add_transcript_line("Dana", "fourth line", T0 + 3)
    store.close()
    assert "fourth line" in md.read_text()


def test_room_names_cannot_escape_the_data_dir(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        room_dir(tmp_path, "../etc")
    assert room_dir(tmp_path, "team-1") == tmp_path / "team-1"


def test_notes_md_reads_like_minutes(tmp_path: Path) -> None:
    with NotesStore.for_room(tmp_path, "team", title="Weekly sync", wall_clock=lambda: T0) as s:
        _seed_notes(s.notes)
    md = to_markdown(load_notes(tmp_path / "team"), tz=UTC)
    assert md.startswith("# Weekly sync\n")
    assert "- Date: Wednesday 01 May 2024, 10:00 UTC" in md
    assert "1. Q3 budget discussion (done, timebox 30 s, took 35 s)" in md
    assert "2. **product launch planning** (in progress)" in md
    assert "- cut the events line (Lee, 10:00)" in md
    assert "- [ ] **Lee**: draft the launch announcement (due Friday, 2024-05-03)" in md
    assert "- 10:00:01 **Dana**: Hey assistant" in md
    assert "- 10:00:02 *assistant*: Of course!" in md
    on_disk = (tmp_path / "team" / NOTES_MD).read_text()
    assert "draft the launch announcement" in on_disk


def test_exports_and_short_durations(tmp_path: Path) -> None:
    notes = MeetingNotes(title="Weekly", room="team", started_at_wall=T0)
    _seed_notes(notes)
    paths = write_exports(notes, tmp_path / "out")
    assert [p.name for p in paths] == ["notes.md", "notes.json"]
    assert json.loads((tmp_path / "out" / "notes.json").read_text()) == notes.to_dict()
    assert [short_duration(s) for s in (30, 90, 1200, 5400)] == [
        "30 s", "1 min 30 s", "20 min", "1 h 30 min"]


# --------------------------------------------------------------------------- the CLI


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meetbot")
    add_notes_parser(parser.add_subparsers(dest="command"))
    return run_notes(parser.parse_args(["notes", *argv]))


def test_cli_lists_prints_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for room in ("alpha", "beta"):
        with NotesStore.for_room(tmp_path, room, wall_clock=lambda: T0) as s:
            _seed_notes(s.notes)
    assert [m.room for m in list_meetings(tmp_path)] == ["alpha", "beta"]
    assert _run_cli(["--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "beta" in out and "2 agenda items, 1 action item, 1 decision" in out

    assert _run_cli(["--data-dir", str(tmp_path), "alpha"]) == 0
    assert "draft the launch announcement" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "alpha", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["room"] == "alpha"
    assert _run_cli(["--data-dir", str(tmp_path), "beta", "--export", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "notes.md").exists() and (tmp_path / "x" / "notes.json").exists()


def test_cli_unknown_room_is_a_clear_error(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with NotesStore.for_room(tmp_path, "alpha"):
        pass
    assert _run_cli(["--data-dir", str(tmp_path), "gamma"]) == 1
    err = capsys.readouterr().err
    assert "no notes for room 'gamma'" in err and "alpha" in err
    assert _run_cli(["--data-dir", str(tmp_path), "../x"]) == 2
    assert _run_cli(["--data-dir", str(tmp_path / "none")]) == 0
    assert "no meetings" in capsys.readouterr().out


# --------------------------------------------------------------------------- due dates


@pytest.mark.parametrize(
    ("said", "on", "text", "iso"),
    [
        ("by Friday", "2024-05-01", "Friday", "2024-05-03"),
        ("by friday", "2024-05-03", "Friday", "2024-05-10"),  # said on a Friday: next week's
        ("today", "2024-05-03", "today", "2024-05-03"),
        ("this Friday", "2024-05-03", "this Friday", "2024-05-03"),
        ("next Friday", "2024-05-01", "next Friday", "2024-05-10"),
        ("tomorrow morning", "2024-05-01", "tomorrow morning", "2024-05-02"),
        ("by end of day", "2024-05-01", "end of day", "2024-05-01"),
        ("by the end of the week", "2024-05-01", "end of the week", "2024-05-03"),
        ("end of the week", "2024-05-04", "end of the week", "2024-05-05"),  # a Saturday
        ("next week", "2024-05-01", "next week", "2024-05-06"),
        ("by the end of next week", "2024-05-01", "end of next week", "2024-05-10"),
        ("in three days", "2024-05-01", "in three days", "2024-05-04"),
        ("within 2 weeks", "2024-05-01", "within 2 weeks", "2024-05-15"),
        ("by March 3rd", "2024-05-01", "March 3rd", "2025-03-03"),
        ("before the 3rd of june", "2024-05-01", "the 3rd of June", "2024-06-03"),
        ("on the 15th", "2024-05-20", "the 15th", "2024-06-15"),
        ("by the end of the month", "2024-02-10", "end of the month", "2024-02-29"),
        ("asap", "2024-05-01", "ASAP", None),
        ("before the next meeting", "2024-05-01", "next meeting", None),
    ],
)
def test_due_phrases(said: str, on: str, text: str, iso: str | None) -> None:
    wall = datetime.fromisoformat(on).replace(hour=15, tzinfo=UTC).timestamp()
    assert resolve_due(said, wall, UTC) == (text, iso)


def test_due_phrase_span_and_no_false_dates() -> None:
    sentence = "I will draft the launch announcement by Friday."
    due = find_due(sentence, T0, UTC)
    assert due is not None
    assert sentence[: due.start].rstrip() + sentence[due.end :] == (
        "I will draft the launch announcement.")
    for plain in ("the first item", "we may need more time", "the second point", "give it a sec"):
        assert find_due(plain, T0, UTC) is None
    assert resolve_due("whenever", T0, UTC) == ("whenever", None)
