"""Meeting notes as files people read (Markdown) and tools read (JSON)."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from pathlib import Path

from meetbot.meeting.notes import MeetingNotes

_STATUS = {"pending": "pending", "active": "in progress", "done": "done"}


def to_json(notes: MeetingNotes) -> str:
    """The full notes, transcript included, in the schema of ``docs/notes-schema.md``."""
    return json.dumps(notes.to_dict(), indent=2, ensure_ascii=False) + "\n"


def short_duration(seconds: float) -> str:
    """Compact written duration: 30 -> "30 s", 1200 -> "20 min", 5400 -> "1 h 30 min"."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        minutes, rest = divmod(s, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(s, 3600)
    minutes = round(rest / 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def _clock(wall: float, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(wall, tz) if tz else datetime.fromtimestamp(wall).astimezone()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def to_markdown(notes: MeetingNotes, tz: tzinfo | None = None) -> str:
    """Readable notes: title, date, agenda, decisions, action items, notes, transcript.

    Times are shown in ``tz`` (the machine's local time zone when None).
    """
    out: list[str] = [f"# {_one_line(notes.title)}", ""]
    if notes.room:
        out.append(f"- Room: {notes.room}")
    if notes.started_at_wall:
        started = _clock(notes.started_at_wall, tz)
        out.append(f"- Date: {started:%A %d %B %Y, %H:%M %Z}".rstrip())
    out.append("")

    out += ["## Agenda", ""]
    if not notes.agenda:
        out.append("_No agenda items._")
    for n, item in enumerate(notes.agenda, 1):
        parts = [_STATUS[item.status]]
        if item.timebox_s is not None:
            parts.append(f"timebox {short_duration(item.timebox_s)}")
        if item.status == "done" and item.started_at_wall and item.ended_at_wall:
            parts.append(f"took {short_duration(item.ended_at_wall - item.started_at_wall)}")
        title = f"**{_one_line(item.title)}**" if item.status == "active" else item.title
        out.append(f"{n}. {title} ({', '.join(parts)})")
    out.append("")

    out += ["## Decisions", ""]
    if not notes.decisions:
        out.append("_No decisions recorded._")
    for d in notes.decisions:
        who = f" ({d.speaker}, {_clock(d.wall_time, tz):%H:%M})" if d.speaker else ""
        out.append(f"- {_one_line(d.text)}{who}")
    out.append("")

    out += ["## Action items", ""]
    if not notes.action_items:
        out.append("_No action items._")
    for a in notes.action_items:
        box = "x" if a.status == "done" else " "
        owner = f"**{a.owner}**: " if a.owner else "**Unassigned**: "
        due = ""
        if a.due_text:
            due = f" (due {a.due_text}" + (f", {a.due_date})" if a.due_date else ")")
        out.append(f"- [{box}] {owner}{_one_line(a.text)}{due}")
    out.append("")

    if notes.notes:
        out += ["## Notes", ""]
        for note in notes.notes:
            who = f" ({note.speaker})" if note.speaker else ""
            out.append(f"- {_one_line(note.text)}{who}")
        out.append("")

    out += ["## Transcript", ""]
    if not notes.transcript:
        out.append("_Nothing said yet._")
    for line in notes.transcript:
        name = f"*{line.speaker}*" if line.is_bot else f"**{line.speaker}**"
        out.append(f"- {_clock(line.wall_time, tz):%H:%M:%S} {name}: {_one_line(line.text)}")
    out.append("")
    return "\n".join(out)


def write_exports(notes: MeetingNotes, outdir: Path | str,
                  formats: tuple[str, ...] = ("md", "json"),
                  tz: tzinfo | None = None) -> list[Path]:
    """Write ``notes.md`` and/or ``notes.json`` into ``outdir``; returns the paths written."""
    target = Path(outdir)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        if fmt == "md":
            path = target / "notes.md"
            path.write_text(to_markdown(notes, tz), encoding="utf-8")
        elif fmt == "json":
            path = target / "notes.json"
            path.write_text(to_json(notes), encoding="utf-8")
        else:
            raise ValueError(f"unknown export format {fmt!r} (use md or json)")
        written.append(path)
    return written
