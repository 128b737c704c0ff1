"""Plays a scenario into a room with simulated participants and checks the bot's behaviour.

Each speaking step waits for the previous one to be over (the bot finished its reply, or no
reply began within ``grace_s``). The run report (JSON) says what was said, when speech ended,
when the bot's first audio arrived at the speaker (voice-to-voice latency), what the bot said as
heard and transcribed by the participant, and whether each expectation held.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from meetbot.events import PCM16
from meetbot.scenario import Expect, Scenario, ScenarioError, Step, Voice
from meetbot.simulate import Recorder, SimulatedParticipant
from meetbot.speech.base import SpeechToText

log = logging.getLogger(__name__)

Renderer = Callable[[Voice, str], Awaitable[tuple[PCM16, int]]]
"""Turns text into speech for a scenario voice: (pcm, sample rate)."""

REPLY_SILENCE_S = 1.2
"""A bot reply is over after this much silence from the bot."""


@dataclass
class Check:
    name: str
    expected: Any
    actual: Any
    passed: bool


@dataclass
class StepReport:
    step: int
    kind: str
    speaker: str = ""
    said: str = ""
    speech_start: float | None = None
    speech_end: float | None = None
    reply_start: float | None = None
    reply_end: float | None = None
    latency_ms: float | None = None
    reply_text: str = ""
    checks: list[Check] = field(default_factory=list)


@dataclass
class RunReport:
    scenario: str
    room_url: str
    steps: list[StepReport] = field(default_factory=list)
    notes: dict[str, Any] | None = None
    note_checks: list[Check] = field(default_factory=list)
    started_wall: float = field(default_factory=time.time)

    @property
    def passed(self) -> bool:
        return all(c.passed for s in self.steps for c in s.checks) and all(
            c.passed for c in self.note_checks
        )

    @property
    def latencies_ms(self) -> list[float]:
        return [s.latency_ms for s in self.steps if s.latency_ms is not None]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        lat = self.latencies_ms
        data["latency_ms"] = (
            {"median": float(np.median(lat)), "p90": float(np.percentile(lat, 90)), "n": len(lat)}
            if lat
            else None
        )
        return data

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")


async def render_espeak(voice: str, text: str) -> tuple[PCM16, int]:
    """Speak with espeak-ng (a Debian package) into 16 kHz mono PCM."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ScenarioError("voice 'espeak:...' needs espeak-ng (apt-get install espeak-ng)")
    proc = await asyncio.create_subprocess_exec(
        exe, "-v", voice, "--stdout", text,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise ScenarioError(f"espeak-ng failed for voice {voice!r}: {err.decode().strip()}")
    import io
    import wave

    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm, rate


_flite_voices: tuple[str, ...] | None = None


async def flite_voices(exe: str) -> tuple[str, ...]:
    """The voices this flite has built in (``flite -lv``; Debian's: kal, awb_time, kal16, awb,
    rms, slt), read once per process."""
    global _flite_voices
    if _flite_voices is None:
        proc = await asyncio.create_subprocess_exec(
            exe, "-lv", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        listed = out.decode(errors="replace").partition(":")[2]
        _flite_voices = tuple(listed.split())
    return _flite_voices


async def render_flite(voice: str, text: str) -> tuple[PCM16, int]:
    """Speak with flite (a Debian package) into mono PCM at the voice's own rate.

    flite is a synthesizer family unlike Piper and espeak-ng (diphone and unit-selection
    voices: slt a US woman, rms and kal US men, kal at 8 kHz, awb a Scottish man), so
    scenarios and the STT benchmark can try the bot's ears on voices it was not tuned with.
    ``voice`` is a built-in name or a ``.flitevox`` file. flite quietly speaks with kal when it
    does not know a voice name, so names are checked against ``flite -lv`` first. The WAV goes
    through a temporary file, as flite writes it for a seekable file.
    """
    exe = shutil.which("flite")
    if exe is None:
        raise ScenarioError("voice 'flite:...' needs flite (apt-get install flite)")
    voice = voice or "slt"
    if "/" not in voice and not voice.endswith(".flitevox"):
        known = await flite_voices(exe)
        if voice not in known:
            raise ScenarioError(
                f"flite has no voice {voice!r} (it has: {', '.join(known) or 'none listed'})"
            )
    import io
    import tempfile
    import wave

    with tempfile.TemporaryDirectory(prefix="meetbot-flite-") as tmp:
        out_path = Path(tmp) / "speech.wav"
        proc = await asyncio.create_subprocess_exec(
            exe, "-voice", voice, "-t", text, "-o", str(out_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0 or not out_path.is_file() or out_path.stat().st_size <= 44:
            problem = (err or out).decode(errors="replace").strip() or "no audio written"
            raise ScenarioError(f"flite failed for voice {voice!r}: {problem}")
        data = out_path.read_bytes()
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm, rate


def mentions(text: str, phrase: str) -> bool:
    """Case-insensitive, punctuation-insensitive containment of a word or phrase."""
    def norm(s: str) -> str:
        return " " + " ".join("".join(c if c.isalnum() else " " for c in s.lower()).split()) + " "

    return norm(phrase) in norm(text)


def check_expect(expect: Expect, replied: bool, text: str) -> list[Check]:
    checks: list[Check] = []
    if expect.reply is not None:
        checks.append(Check("reply", expect.reply, replied, replied == expect.reply))
    if expect.mentions_any:
        ok = any(mentions(text, w) for w in expect.mentions_any)
        checks.append(Check("reply_mentions_any", list(expect.mentions_any), text, ok))
    if expect.mentions_all:
        missing = [w for w in expect.mentions_all if not mentions(text, w)]
        checks.append(Check("reply_mentions_all", list(expect.mentions_all), text, not missing))
    return checks


class ScenarioRunner:
    """Drives one scenario against whatever bot is in the room."""

    def __init__(
        self,
        scenario: Scenario,
        room_url: str,
        render: Renderer | None = None,
        stt: SpeechToText | None = None,
        grace_s: float = 5.0,
        out_dir: Path | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.room_url = room_url
        self._render = render
        self._stt = stt
        self.grace_s = grace_s
        self.out_dir = out_dir
        self._say = on_line or (lambda line: log.info("%s", line))
        self.people: dict[str, SimulatedParticipant] = {}
        self.report = RunReport(scenario.name, room_url)

    async def prepare_audio(self) -> dict[int, tuple[PCM16, int]]:
        """Render every line before the meeting, so synthesis does not compete with the bot."""
        audio: dict[int, tuple[PCM16, int]] = {}
        voices = {p.name: p.voice for p in self.scenario.participants}
        for step in self.scenario.steps:
            if step.kind != "speak":
                continue
            if step.wav is not None:
                from meetbot.speech.audio import read_wav

                audio[step.index] = read_wav(step.wav)
            else:
                if self._render is None:
                    raise ScenarioError(f"step {step.index}: 'say' needs a text-to-speech voice")
                audio[step.index] = await self._render(voices[step.speaker], step.say)
        return audio

    async def run(self) -> RunReport:
        audio = await self.prepare_audio()
        try:
            for p in self.scenario.participants:
                person = SimulatedParticipant(self.room_url, p.name)
                await person.join()
                self.people[p.name] = person
            for person in self.people.values():
                await person.wait_for_peer(self.scenario.bot_name, within_s=15)
            await asyncio.sleep(0.5)
            for step in self.scenario.steps:
                self.report.steps.append(await self._run_step(step, audio.get(step.index)))
            await asyncio.sleep(0.5)
            await self._check_notes()
        finally:
            await self._finish()
        return self.report

    async def _run_step(self, step: Step, clip: tuple[PCM16, int] | None) -> StepReport:
        if step.kind == "pause":
            await asyncio.sleep(step.pause_s)
            return StepReport(step.index, "pause")
        listener = self.people[step.speaker or self.scenario.participants[0].name]
        bot = listener.recorder_for(self.scenario.bot_name)
        if bot is None:
            raise RuntimeError(f"{listener.name} does not hear the bot {self.scenario.bot_name!r}")
        rep = StepReport(step.index, step.kind, speaker=step.speaker, said=step.say)
        if step.kind == "wait_for_bot":
            since = time.monotonic()
            rep.reply_start = await _first_sound(bot, since, step.timeout_s)
        else:
            assert clip is not None
            self._say(f"{step.speaker}: {step.say or step.wav}")
            spoken = await listener.speak(*clip)
            rep.speech_start, rep.speech_end = spoken.speech_start, spoken.speech_end
            rep.reply_start = await _first_sound(bot, spoken.speech_end, self.grace_s)
            if rep.reply_start is not None:
                rep.latency_ms = round((rep.reply_start - spoken.speech_end) * 1000, 1)
        if rep.reply_start is not None:
            rep.reply_end = await _reply_end(
                bot, rep.reply_start, lambda: listener.peer_says_speaking(self.scenario.bot_name)
            )
            rep.reply_text = await self._transcribe(bot, rep.reply_start, rep.reply_end)
            latency = f" ({rep.latency_ms:.0f} ms)" if rep.latency_ms is not None else ""
            self._say(f"{self.scenario.bot_name}{latency}: {rep.reply_text or '(audio)'}")
        rep.checks = check_expect(step.expect, rep.reply_start is not None, rep.reply_text)
        for c in rep.checks:
            if not c.passed:
                self._say(f"  ✗ step {step.index} {c.name}: expected {c.expected!r}, "
                          f"got {c.actual!r}")
        return rep

    async def _transcribe(self, rec: Recorder, start: float, end: float) -> str:
        if self._stt is None:
            return ""
        pcm = rec.audio(start - 0.1, end + 0.1)
        try:
            return (await self._stt.transcribe(pcm)).text.strip()
        except Exception as exc:  # a participant's ears failing must not end the run
            log.warning("could not transcribe the bot's reply: %s", exc)
            return ""

    async def _check_notes(self) -> None:
        expect = self.scenario.expect_notes
        if not expect:
            return
        notes = await fetch_notes(self.room_url)
        self.report.notes = notes
        self.report.note_checks = check_notes(expect, notes)
        for c in self.report.note_checks:
            if not c.passed:
                self._say(f"  ✗ notes {c.name}: expected {c.expected!r}, got {c.actual!r}")

    async def _finish(self) -> None:
        if self.out_dir is not None:
            await asyncio.to_thread(self._save, self.out_dir)
        for person in self.people.values():
            await person.leave()

    def _save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, person in self.people.items():
            for rec in person.recorders.values():
                rec.save(out_dir / f"{name}-hears-{rec.peer.name}.wav")
        self.report.write(out_dir / "report.json")


async def _first_sound(rec: Recorder, since: float, within_s: float) -> float | None:
    deadline = time.monotonic() + within_s
    while True:
        found = rec.first_sound_after(since)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.02)


async def _reply_end(
    rec: Recorder, start: float, bot_speaking: Callable[[], bool | None], max_s: float = 60.0
) -> float:
    """Wait for the end of the bot's reply; return the time of its last sound.

    A bot that announces ``speaking`` (meetbot does) is done when it says so and has been quiet
    briefly; for any other bot, ``REPLY_SILENCE_S`` of silence ends the reply.
    """
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        last = rec.last_sound() or start
        quiet = time.monotonic() - last
        announced = bot_speaking()
        if (announced is False and quiet > 0.3) or (announced is None and quiet > REPLY_SILENCE_S):
            return last + 0.02
        await asyncio.sleep(0.05)
    return rec.last_sound() or start


async def fetch_notes(room_url: str) -> dict[str, Any] | None:
    """The room's notes from the room server's notes endpoint (None when there are none)."""
    base, _, room = room_url.rpartition("/r/")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/rooms/{room}/notes") as resp:
            if resp.status != 200:
                return None
            data = await resp.json()
            return data if isinstance(data, dict) else None


def check_notes(expect: dict[str, Any], notes: dict[str, Any] | None) -> list[Check]:
    """Compare notes with a scenario's ``expect_notes``."""
    notes = notes or {}
    checks: list[Check] = []
    agenda = notes.get("agenda", [])
    for want in expect.get("agenda", []):
        hit = next((a for a in agenda if mentions(a.get("title", ""), want["title_mentions"])),
                   None)
        ok = hit is not None and ("status" not in want or hit.get("status") == want["status"])
        checks.append(Check(f"agenda {want['title_mentions']!r}", want, hit, ok))
    items = notes.get("action_items", [])
    for want in expect.get("action_items", []):
        def fits(a: dict[str, Any], want: dict[str, Any] = want) -> bool:
            return (
                ("owner" not in want or mentions(a.get("owner") or "", want["owner"]))
                and ("text_mentions" not in want or mentions(a.get("text", ""),
                                                               want["text_mentions"]))
                and ("due_mentions" not in want or mentions(
                    f"{a.get('due_text') or ''} {a.get('due_date') or ''}", want["due_mentions"]))
            )
        hit = next((a for a in items if fits(a)), None)
        checks.append(Check("action item", want, hit or items, hit is not None))
    decisions = notes.get("decisions", [])
    for want in expect.get("decisions", []):
        hit = next((d for d in decisions if mentions(d.get("text", ""), want["text_mentions"])),
                   None)
        checks.append(Check("decision", want, hit or decisions, hit is not None))
    speakers = {line.get("speaker") for line in notes.get("transcript", [])}
    for name in expect.get("transcript_speakers", []):
        checks.append(Check(f"transcript speaker {name}", name, sorted(map(str, speakers)),
                            name in speakers))
    return checks
