"""The scenario file format (a scripted meeting), parsed and validated with clear errors.

Users write scenarios to test their bots, so a malformed file names the step and field that are
wrong instead of failing somewhere in the middle of a run. The format is documented in
``docs/scenarios.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the step and field."""


@dataclass(frozen=True)
class Expect:
    reply: bool | None = None
    mentions_any: tuple[str, ...] = ()
    mentions_all: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    index: int
    """1-based, as people count steps in a file."""
    kind: str  # "speak" | "wait_for_bot" | "pause"
    speaker: str = ""
    say: str = ""
    wav: Path | None = None
    timeout_s: float = 60.0
    pause_s: float = 0.0
    expect: Expect = field(default_factory=Expect)
    intended_reply: str = ""


@dataclass(frozen=True)
class Voice:
    engine: str  # "piper" | "espeak" | "flite"
    option: str = ""
    """piper: a length scale (pace); espeak / flite: the voice name."""


@dataclass(frozen=True)
class ScenarioParticipant:
    name: str
    voice: Voice


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    bot_name: str
    participants: tuple[ScenarioParticipant, ...]
    steps: tuple[Step, ...]
    expect_notes: dict[str, Any]
    path: Path | None = None


_STEP_FIELDS = {
    "speaker", "say", "wav", "wait_for", "timeout_s", "pause_s", "expect", "intended_reply",
    "comment",
}
_EXPECT_FIELDS = {"reply", "reply_mentions_any", "reply_mentions_all"}
_NOTES_FIELDS = {"agenda", "action_items", "decisions", "transcript_speakers"}


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ScenarioError(f"{p}: no such scenario file") from exc
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{p}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    return parse_scenario(data, base_dir=p.parent, source=str(p), path=p)


def parse_scenario(
    data: Any, base_dir: Path = Path("."), source: str = "scenario", path: Path | None = None
) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be a JSON object")
    unknown = set(data) - {
        "name", "description", "bot", "participants", "steps", "expect_notes", "comment",
    }
    if unknown:
        raise ScenarioError(f"{source}: unknown top-level field(s) {sorted(unknown)}")
    name = _str(data, "name", source, default="scenario")
    bot = data.get("bot", {})
    if not isinstance(bot, dict):
        raise ScenarioError(f"{source}: field 'bot' must be an object like {{\"name\": ...}}")
    bot_name = _str(bot, "name", f"{source}: bot", default="assistant")

    raw_people = data.get("participants")
    if not isinstance(raw_people, list) or not raw_people:
        raise ScenarioError(f"{source}: field 'participants' must be a non-empty list")
    people: list[ScenarioParticipant] = []
    for i, raw in enumerate(raw_people, 1):
        where = f"{source}: participant {i}"
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: must be an object with 'name' and 'voice'")
        pname = _str(raw, "name", where)
        if any(p.name == pname for p in people):
            raise ScenarioError(f"{where}: duplicate participant name {pname!r}")
        people.append(ScenarioParticipant(pname, parse_voice(raw.get("voice", "piper"), where)))
    names = {p.name for p in people}

    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(f"{source}: field 'steps' must be a non-empty list")
    steps = [_parse_step(raw, i, names, base_dir, source) for i, raw in enumerate(raw_steps, 1)]

    expect_notes = data.get("expect_notes", {})
    if not isinstance(expect_notes, dict):
        raise ScenarioError(f"{source}: field 'expect_notes' must be an object")
    bad = set(expect_notes) - _NOTES_FIELDS
    if bad:
        raise ScenarioError(f"{source}: expect_notes: unknown field(s) {sorted(bad)}")
    return Scenario(
        name=name,
        description=str(data.get("description", "")),
        bot_name=bot_name,
        participants=tuple(people),
        steps=tuple(steps),
        expect_notes=expect_notes,
        path=path,
    )


def parse_voice(raw: Any, where: str) -> Voice:
    if not isinstance(raw, str):
        raise ScenarioError(f"{where}: field 'voice' must be a string like 'piper' or 'espeak:en'")
    engine, _, option = raw.partition(":")
    if engine == "piper":
        if option:
            try:
                if float(option) <= 0:
                    raise ValueError
            except ValueError as exc:
                raise ScenarioError(
                    f"{where}: field 'voice': piper pace must be a positive number, got {option!r}"
                ) from exc
        return Voice("piper", option)
    if engine == "espeak":
        return Voice("espeak", option or "en-us")
    if engine == "flite":
        return Voice("flite", option or "slt")
    raise ScenarioError(
        f"{where}: field 'voice': unknown voice {raw!r} (use piper, espeak:NAME or flite:NAME)")


def _parse_step(raw: Any, i: int, names: set[str], base_dir: Path, source: str) -> Step:
    where = f"{source}: step {i}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be an object")
    unknown = set(raw) - _STEP_FIELDS
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {sorted(unknown)}")
    expect = _parse_expect(raw.get("expect", {}), where)
    intended = str(raw.get("intended_reply", ""))
    if "pause_s" in raw:
        pause = raw["pause_s"]
        if not isinstance(pause, int | float) or isinstance(pause, bool) or pause < 0:
            raise ScenarioError(f"{where}: field 'pause_s' must be a number >= 0")
        return Step(i, "pause", pause_s=float(pause))
    if "wait_for" in raw:
        if raw["wait_for"] != "bot":
            raise ScenarioError(f"{where}: field 'wait_for' must be \"bot\"")
        timeout = raw.get("timeout_s", 60)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ScenarioError(f"{where}: field 'timeout_s' must be a positive number")
        return Step(i, "wait_for_bot", timeout_s=float(timeout), expect=expect,
                    intended_reply=intended)
    speaker = raw.get("speaker")
    if not isinstance(speaker, str):
        raise ScenarioError(f"{where}: needs 'speaker' (with 'say' or 'wav'), 'wait_for' or "
                            "'pause_s'")
    if speaker not in names:
        raise ScenarioError(f"{where}: field 'speaker': {speaker!r} is not a participant "
                            f"({', '.join(sorted(names))})")
    has_say, has_wav = "say" in raw, "wav" in raw
    if has_say == has_wav:
        raise ScenarioError(f"{where}: give exactly one of 'say' or 'wav'")
    if has_say:
        say = raw["say"]
        if not isinstance(say, str) or not say.strip():
            raise ScenarioError(f"{where}: field 'say' must be non-empty text")
        return Step(i, "speak", speaker=speaker, say=say, expect=expect, intended_reply=intended)
    wav = raw["wav"]
    if not isinstance(wav, str) or not wav:
        raise ScenarioError(f"{where}: field 'wav' must be a file path")
    wav_path = (base_dir / wav).resolve()
    if not wav_path.is_file():
        raise ScenarioError(f"{where}: field 'wav': no such file {wav_path}")
    return Step(i, "speak", speaker=speaker, wav=wav_path, expect=expect, intended_reply=intended)


def _parse_expect(raw: Any, where: str) -> Expect:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: field 'expect' must be an object")
    unknown = set(raw) - _EXPECT_FIELDS
    if unknown:
        raise ScenarioError(f"{where}: expect: unknown field(s) {sorted(unknown)}")
    reply = raw.get("reply")
    if reply is not None and not isinstance(reply, bool):
        raise ScenarioError(f"{where}: field 'expect.reply' must be true or false")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("reply_mentions_any", "reply_mentions_all"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ScenarioError(f"{where}: field 'expect.{key}' must be a list of words")
        lists[key] = tuple(value)
    if (lists["reply_mentions_any"] or lists["reply_mentions_all"]) and reply is None:
        reply = True
    return Expect(reply, lists["reply_mentions_any"], lists["reply_mentions_all"])


def _str(data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{where}: field {key!r} must be a non-empty string")
    return value
