"""``meetbot notes``: list meetings, print or export one meeting's notes.

Reads the journal (the truth) without writing to the meeting directory, so it is safe to run
while a bot is still in the room.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from meetbot.config import BotConfig
from meetbot.meeting.export import to_json, to_markdown, write_exports
from meetbot.meeting.store import ROOM_RE, StoreError, list_meetings, load_notes


def add_notes_parser(subparsers: Any) -> None:
    """Register ``notes`` on the main CLI's subparsers (``func`` is set to :func:`run_notes`)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "notes",
        help="list meetings, or print/export a meeting's notes",
        description="With no ROOM, list the meetings in the data directory. With a ROOM, print "
                    "its notes (Markdown by default) or write them to --export OUTDIR.",
    )
    p.add_argument("room", nargs="?", metavar="ROOM", help="the room whose notes to show")
    p.add_argument("--data-dir", type=Path, default=BotConfig().data_dir,
                   help="where meetings are stored (default: %(default)s)")
    p.add_argument("--format", choices=("md", "json"), default="md",
                   help="output format (default: md)")
    p.add_argument("--export", type=Path, metavar="OUTDIR",
                   help="write notes.md and notes.json into OUTDIR instead of printing")
    p.set_defaults(func=run_notes)


def run_notes(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    room: str | None = args.room
    if room is None:
        return _list(data_dir)
    if not ROOM_RE.match(room):
        print(f"meetbot notes: {room!r} is not a room name", file=sys.stderr)
        return 2
    try:
        notes = load_notes(data_dir / room)
    except FileNotFoundError:
        known = ", ".join(m.room for m in list_meetings(data_dir)) or "none"
        print(f"meetbot notes: no notes for room {room!r} in {data_dir} (known rooms: {known})",
              file=sys.stderr)
        return 1
    except (StoreError, OSError) as exc:
        print(f"meetbot notes: cannot read the notes of {room!r}: {exc}", file=sys.stderr)
        return 1
    if args.export is not None:
        for path in write_exports(notes, args.export):
            print(path)
        return 0
    sys.stdout.write(to_json(notes) if args.format == "json" else to_markdown(notes))
    return 0


def _list(data_dir: Path) -> int:
    meetings = list_meetings(data_dir)
    if not meetings:
        print(f"no meetings in {data_dir}")
        return 0
    for m in meetings:
        started = (datetime.fromtimestamp(m.started_at_wall).astimezone().strftime("%Y-%m-%d %H:%M")
                   if m.started_at_wall else "?")
        counts = ", ".join(_count(n, what) for n, what in (
            (m.agenda_items, "agenda item"), (m.action_items, "action item"),
            (m.decisions, "decision")))
        print(f"{m.room}\t{started}\t{m.title}\t{counts}")
    return 0


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m meetbot.meeting.cli_notes``."""
    parser = argparse.ArgumentParser(prog="meetbot")
    add_notes_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["notes", *(sys.argv[1:] if argv is None else argv)])
    return run_notes(args)


if __name__ == "__main__":
    raise SystemExit(main())
