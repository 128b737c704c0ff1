"""Persisting meeting notes as the meeting goes, so a crash loses nothing acknowledged.

Layout: ``<data_dir>/<room>/journal.jsonl`` (the truth: one applied :class:`NoteChange` per
line, flushed and fsynced before the operation returns), plus ``notes.json`` and ``notes.md``
snapshots rewritten atomically (temp file + ``os.replace``) for people and tools to read.
Opening a directory that has a journal replays it, so a restarted bot in the same room carries
on with the same notes; a torn last line (a crash mid-write, never acknowledged) is dropped.

Snapshots after transcript lines are rate-limited (``snapshot_interval_s``): the journal already
holds every line, and rewriting a long transcript on every utterance would not be cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from meetbot.meeting.export import to_json, to_markdown
from meetbot.meeting.notes import Listener, MeetingNotes, NoteChange, create_change

JOURNAL = "journal.jsonl"
NOTES_JSON = "notes.json"
NOTES_MD = "notes.md"
ROOM_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class StoreError(RuntimeError):
    """The notes directory cannot be used (corrupt journal, another writer)."""


def room_dir(data_dir: Path | str, room: str) -> Path:
    """``<data_dir>/<room>``; rejects names that are not room names (no path tricks)."""
    if not ROOM_RE.match(room):
        raise StoreError(f"invalid room name {room!r}: use letters, digits, '-' and '_'")
    return Path(data_dir) / room


@dataclass(frozen=True)
class JournalRead:
    notes: MeetingNotes
    entries: int
    good_bytes: int
    """Length of the journal up to the end of the last complete entry."""
    torn: bool
    """The last line was incomplete or unreadable and was ignored."""


def read_journal(path: Path) -> JournalRead:
    """Replay a journal into fresh notes, tolerating a torn last line."""
    data = path.read_bytes()
    notes = MeetingNotes()
    lines = data.split(b"\n")
    offset = entries = 0
    torn = False
    for index, raw in enumerate(lines):
        last = index == len(lines) - 1
        if last and raw == b"":
            break
        if raw.strip() == b"":
            offset += len(raw) + 1
            continue
        try:
            if last:
                raise ValueError("no newline at the end")  # the write did not complete
            notes.apply(NoteChange.from_dict(json.loads(raw)))
        except (ValueError, KeyError, TypeError) as exc:
            if last:
                torn = True
                break
            raise StoreError(f"{path}:{index + 1}: corrupt journal entry: {exc}") from exc
        offset += len(raw) + 1
        entries += 1
    return JournalRead(notes, entries, offset, torn)


def load_notes(directory: Path | str) -> MeetingNotes:
    """Read a meeting's notes without writing anything (for ``meetbot notes``)."""
    d = Path(directory)
    if (d / JOURNAL).exists():
        return read_journal(d / JOURNAL).notes
    if (d / NOTES_JSON).exists():
        try:
            return MeetingNotes.from_dict(json.loads((d / NOTES_JSON).read_text("utf-8")))
        except ValueError as exc:
            raise StoreError(f"{d / NOTES_JSON}: {exc}") from exc
    raise FileNotFoundError(f"no meeting notes in {d}")


@dataclass(frozen=True)
class MeetingSummary:
    room: str
    directory: Path
    title: str
    started_at_wall: float
    agenda_items: int
    action_items: int
    decisions: int


def list_meetings(data_dir: Path | str) -> list[MeetingSummary]:
    """Meetings under ``data_dir``, oldest first; unreadable ones are skipped."""
    base = Path(data_dir)
    if not base.is_dir():
        return []
    found: list[MeetingSummary] = []
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            n = load_notes(d)
        except (FileNotFoundError, StoreError, OSError):
            continue
        found.append(MeetingSummary(d.name, d, n.title, n.started_at_wall, len(n.agenda),
                                    len(n.action_items), len(n.decisions)))
    return sorted(found, key=lambda s: (s.started_at_wall, s.room))


class NotesStore:
    """Owns one meeting's notes and their files; the only writer of that directory.

    Every change made through ``store.notes`` (by any brain) is journaled before the op
    returns, then the store's own subscribers hear of it (push it to the room page there).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        room: str | None = None,
        title: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        snapshot_interval_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._monotonic = monotonic
        self._snapshot_interval_s = snapshot_interval_s
        self._listeners: list[Listener] = []
        journal = self.directory / JOURNAL
        existed = journal.exists() and journal.stat().st_size > 0
        self._fd = os.open(journal, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._fd)
            raise StoreError(f"another process is writing the notes in {self.directory}") from exc
        try:
            if existed:
                read = read_journal(journal)
                if read.torn:
                    os.ftruncate(self._fd, read.good_bytes)
                    os.fsync(self._fd)
                self._notes = read.notes
                self.replayed_entries = read.entries
            else:
                os.ftruncate(self._fd, 0)
                self._notes = MeetingNotes()
                room_name = room or self.directory.name
                first = create_change(title or f"Meeting in {room_name}", room_name, wall_clock())
                self._notes.apply(first)
                self._append(first)
                _fsync_dir(self.directory)
                self.replayed_entries = 0
        except BaseException:
            os.close(self._fd)
            raise
        self._last_snapshot = float("-inf")
        self._dirty = True
        self._unsubscribe = self._notes.subscribe(self._on_change)
        self.flush()

    @classmethod
    def open(cls, directory: Path | str, *, room: str | None = None, title: str | None = None,
             wall_clock: Callable[[], float] = time.time) -> NotesStore:
        """Open a meeting directory: replay its journal, or start new notes when there is none.

        ``room`` and ``title`` only matter for new notes (default: the directory's name)."""
        return cls(directory, room=room, title=title, wall_clock=wall_clock)

    @classmethod
    def for_room(cls, data_dir: Path | str, room: str, *, title: str | None = None,
                 wall_clock: Callable[[], float] = time.time) -> NotesStore:
        """The store of ``room`` under ``data_dir`` (``BotConfig.data_dir``)."""
        return cls(room_dir(data_dir, room), room=room, title=title, wall_clock=wall_clock)

    @property
    def notes(self) -> MeetingNotes:
        return self._notes

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Hear of each change after it is durable; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def flush(self) -> None:
        """Rewrite the snapshots if anything changed since the last rewrite."""
        if not self._dirty:
            return
        _atomic_write(self.directory / NOTES_JSON, to_json(self._notes))
        _atomic_write(self.directory / NOTES_MD, to_markdown(self._notes))
        self._dirty = False
        self._last_snapshot = self._monotonic()

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.flush()
        finally:
            self._unsubscribe()
            os.close(self._fd)  # releases the lock
            self._fd = -1

    def __enter__(self) -> NotesStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------------------- internals

    def _on_change(self, change: NoteChange) -> None:
        if self._fd < 0:
            raise StoreError("the notes store is closed")
        self._append(change)
        self._dirty = True
        transcript_only = change.op == "add_transcript_line"
        if not transcript_only or (
            self._monotonic() - self._last_snapshot >= self._snapshot_interval_s
        ):
            self.flush()
        for listener in list(self._listeners):
            listener(change)

    def _append(self, change: NoteChange) -> None:
        line = json.dumps(change.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
        data = memoryview(line.encode("utf-8"))
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
        os.fsync(self._fd)


def _atomic_write(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one. Not fsynced: after a crash
    the journal is the truth and reopening the store rewrites the snapshots from it."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
