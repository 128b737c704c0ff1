"""Voice-to-voice latency: simulated participants play scripted meetings against the bot over
real WebRTC, with the local models, and time every answer where a person would: from their
last speech sample to the first audible sample of the bot's reply.

    python3 -m benchmarks.latency [--scenarios seed,long] [--repeats 1]
        [--bot-arg=--vad-end-ms=300] [--bot-env OMP_WAIT_POLICY=PASSIVE]

What runs: a room server and the simulated participants in this process (meetbot's
``ScenarioRunner`` with Piper voices; every line is rendered before the meeting starts), and
the bot in its own process exactly as a user starts it,
``python3 -m meetbot join URL --latency-log FILE`` (plus any ``--bot-arg``/``--bot-env``).

The scenarios: the seed meeting (``meetbot/scenarios/seed-meeting.json``) and
``benchmarks/scenarios/long-conversation.json`` (22 addressed turns by three people).

The reply to a line is the one the bot's latency log records for it (same speaker, same end of
speech); its first audible frame at the speaker ends the measurement. So a timekeeping cue that
happens to start after a line is not taken for its answer. Each answered turn is split into
stages that add up to what the participant measured; both processes read the same system-wide
monotonic clock, so the bot's timestamps line up with the participant's:

- ``inbound``: participant's end of speech -> the bot's estimate of it (network, jitter buffer,
  and how well the bot places the end of speech);
- ``endpointing``: the wait until the bot decides the utterance is over (VAD hangover);
- ``stt``: from that decision until the transcript is ready (early transcription started at a
  pause hides part of it);
- ``brain``: transcript -> first reply text; ``tts``: -> first synthesized audio;
- ``voice_clock``: -> the first reply frame leaves the bot's 20 ms clock;
- ``outbound``: -> the participant hears the first audible sample (Opus, network, jitter
  buffer, and the silence Piper puts before the first word, estimated separately).

The expectations in the scenario are checked against the reply as the bot logged it (what its
brain said), not against a participant's transcription of it. STT accuracy is the word error
rate of the bot's transcripts (its notes journal) against the script, over the whole meeting
and over the answered turns. The offline comparison (on by default) transcribes the same
scripted turns with the bot's Whisper settings and with Whisper's full 30 s window, in a process
with the bot's environment, for time and word error rate side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    RESULTS_DIR,
    SCENARIOS_DIR,
    machine_info,
    machine_line,
    md_table,
    median,
    setup_logging,
    stats,
    word_errors,
)
from benchmarks.report import publish

log = logging.getLogger("benchmarks.latency")

TARGET_MEDIAN_MS = 500.0
STAGES = ("inbound", "endpointing", "stt", "brain", "tts", "voice_clock", "outbound")
SCENARIOS = {
    "seed": None,  # the package's own seed meeting
    "long": SCENARIOS_DIR / "long-conversation.json",
}


def bot_environment(args: argparse.Namespace) -> dict[str, str]:
    """The bot's environment: this one's plus the ``--bot-env`` settings."""
    env = dict(os.environ)
    for item in args.bot_env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--bot-env wants KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def scenario_path(name: str) -> Path:
    from meetbot.session import default_scenario_path

    if name in SCENARIOS:
        path = SCENARIOS[name]
        return path if path is not None else default_scenario_path()
    return Path(name)


# ---- one meeting ------------------------------------------------------------------------------


class BotProcess:
    """``python3 -m meetbot join URL --latency-log FILE``: the bot as users start it."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @classmethod
    async def start(cls, url: str, name: str, latency_log: Path, data_dir: Path,
                    extra: list[str], env: dict[str, str], log_path: Path,
                    wait_s: float = 180.0) -> BotProcess:
        with log_path.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "meetbot", "join", url, "--name", name,
                "--latency-log", str(latency_log), "--data-dir", str(data_dir), *extra,
                stdout=asyncio.subprocess.PIPE, stderr=err, env=env,
            )
        bot = cls(proc, log_path)
        assert proc.stdout is not None
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), deadline - time.monotonic())
            except TimeoutError:
                break
            if not line:
                break
            if b" is in " in line:
                return bot
        await bot.stop()
        raise RuntimeError(f"the bot did not join within {wait_s:.0f} s:\n{bot.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    async def stop(self) -> None:
        """SIGTERM: the bot leaves cleanly and closes its notes (``meetbot join`` handles it)."""
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def match_turn(step: dict[str, Any], turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The bot's latency record for a participant's step: same speaker, end of speech within
    1.5 s (both are monotonic times on one machine)."""
    if step.get("speech_end") is None:
        return None
    best = None
    for t in turns:
        if t["speaker_name"] != step["speaker"]:
            continue
        gap = abs(t["speech_end"] - step["speech_end"])
        if gap < 1.5 and (best is None or gap < abs(best["speech_end"] - step["speech_end"])):
            best = t
    return best


def stage_split(step: dict[str, Any], turn: dict[str, Any]) -> dict[str, float] | None:
    """Milliseconds per stage; they sum to the participant-measured latency."""
    needed = ("transcript_ready", "first_reply_text", "first_audio_synth", "first_audio_sent")
    if step.get("reply_start") is None or any(turn.get(k) is None for k in needed):
        return None
    detected = turn["speech_end"] + turn.get("extra", {}).get("endpointing", 0.0)
    points = [step["speech_end"], turn["speech_end"], detected, turn["transcript_ready"],
              turn["first_reply_text"], turn["first_audio_synth"], turn["first_audio_sent"],
              step["reply_start"]]
    return {name: round((b - a) * 1000, 1)
            for name, a, b in zip(STAGES, points[:-1], points[1:], strict=True)}


def _progress(line: str) -> None:
    """The runner's running commentary, minus its reply checks: without ears it has no reply
    text to check, so the checks that count are made here, against the bot's log."""
    if not line.lstrip().startswith("✗ step"):
        log.info("%s", line)


REPLY_MIN_TRANSIT_S = 0.05
"""A reply's audio cannot be heard sooner than this after it left the bot (the receiver's
jitter buffer alone holds 80 ms): sound heard earlier is something the bot said before."""


def reply_heard_at(runner: Any, bot_name: str, step: dict[str, Any],
                   turn: dict[str, Any] | None) -> float | None:
    """When the speaker heard the first audible frame of the bot's reply to this step.

    The reply is the one the bot's latency log records for the step, so a timekeeping cue the
    bot happened to start after the line is not taken for its answer (the scenario runner
    times the first bot sound after the line, whatever it was).
    """
    if turn is None or turn.get("first_audio_sent") is None or step.get("speech_end") is None:
        return None
    person = runner.people.get(step["speaker"])
    recorder = person.recorder_for(bot_name) if person is not None else None
    if recorder is None:
        return None
    heard: float | None = recorder.first_sound_after(turn["first_audio_sent"]
                                                     + REPLY_MIN_TRANSIT_S)
    return heard


async def leading_silence_ms(texts: list[str]) -> list[float | None]:
    """How much silence the bot's TTS puts before the first audible sample of each reply's
    first chunk (the participant's audibility threshold, -45 dBFS). Part of ``outbound``."""
    from meetbot.config import SpeechConfig
    from meetbot.conversation import sentences
    from meetbot.simulate import voiced_bounds
    from meetbot.speech.factory import build_voice_of_bot

    tts = build_voice_of_bot(SpeechConfig())
    out: list[float | None] = []
    for text in texts:
        if not text:
            out.append(None)
            continue

        async def one(text: str = text) -> Any:
            yield text

        first = None
        async for chunk_text in sentences(one()):
            first = chunk_text
            break
        if first is None:
            out.append(None)
            continue
        async for pcm in tts.synthesize(first):
            lo, _ = voiced_bounds(pcm, tts.sample_rate)
            out.append(round(lo * 1000, 1))
            break
        else:
            out.append(None)
    return out


async def run_meeting(scenario_file: Path, rep: int, args: argparse.Namespace, server: Any,
                      voices: Any, work: Path) -> dict[str, Any]:
    """One scripted meeting against a fresh bot process; per-step figures and transcripts."""
    from meetbot.meeting.store import load_notes, room_dir
    from meetbot.runner import ScenarioRunner, check_expect
    from meetbot.scenario import load_scenario

    scenario = load_scenario(scenario_file)
    room = f"lat-{scenario.name}-{rep}-{int(time.time())}"
    url = server.room_url(room)
    latency_log = work / f"{room}.latency.jsonl"
    data_dir = work / "notes"
    bot = await BotProcess.start(url, scenario.bot_name, latency_log, data_dir, args.bot_arg,
                                 bot_environment(args), work / f"{room}.bot.log")
    started = time.monotonic()
    try:
        # No ears: the replies are checked as the bot logged them, which is what its brain said
        # (a participant's Whisper would only add its own mistakes, and its CPU time).
        runner = ScenarioRunner(scenario, url, render=voices, stt=None, grace_s=args.grace_s,
                                on_line=_progress)
        report = await runner.run()
    finally:
        await bot.stop()
    duration = time.monotonic() - started
    report.write(work / f"{room}.report.json")
    turns = _read_jsonl(latency_log)
    notes = load_notes(room_dir(data_dir, room))
    data = report.to_dict()
    steps: list[dict[str, Any]] = []
    for s in data["steps"]:
        if s["kind"] != "speak":
            continue
        turn = match_turn(s, turns)
        heard_at = reply_heard_at(runner, scenario.bot_name, s, turn)
        timed = {**s, "reply_start": heard_at}
        reply = (turn or {}).get("reply") or ""
        checks = check_expect(scenario.steps[s["step"] - 1].expect, bool(reply), reply)
        step = {
            "step": s["step"], "speaker": s["speaker"], "said": s["said"],
            "latency_ms": round((heard_at - s["speech_end"]) * 1000, 1)
            if heard_at is not None else None,
            "runner_latency_ms": s["latency_ms"],
            "checks_passed": all(c.passed for c in checks),
            "failed_checks": [f"{c.name}: expected {c.expected!r}" for c in checks
                              if not c.passed],
            "bot_transcript": turn["text"] if turn else None,
            "bot_reply": turn["reply"] if turn else None,
            "stages_ms": stage_split(timed, turn) if turn and heard_at is not None else None,
        }
        steps.append(step)
    answered = [s for s in steps if s["stages_ms"] is not None]
    silences = await leading_silence_ms([s["bot_reply"] or "" for s in answered])
    for s, sil in zip(answered, silences, strict=True):
        s["tts_leading_silence_ms"] = sil
    # Word error rate: every line people said, against what the bot's transcript recorded.
    people = {p.name for p in scenario.participants}
    said = " ".join(s["said"] for s in steps)
    heard = " ".join(line.text for line in notes.transcript if line.speaker in people)
    meeting_err, meeting_words = word_errors(said, heard)
    turn_err = turn_words = 0
    for s in answered:
        e, w = word_errors(s["said"], s["bot_transcript"] or "")
        turn_err, turn_words = turn_err + e, turn_words + w
    for st in steps:
        for failed in st["failed_checks"]:
            log.info("  ✗ step %d %s", st["step"], failed)
    log.info("%s #%d: %d steps, %d answered, %.0f s", scenario.name, rep, len(steps),
             len(answered), duration)
    return {
        "scenario": scenario.name,
        "repeat": rep,
        "duration_s": round(duration, 1),
        "passed": all(s["checks_passed"] for s in steps)
        and all(c["passed"] for c in data["note_checks"]),
        "failed_checks": [f"step {s['step']}: {f}" for s in steps for f in s["failed_checks"]]
        + [f"notes: {c['name']}" for c in data["note_checks"] if not c["passed"]],
        "steps": steps,
        "wer_meeting": {"errors": meeting_err, "words": meeting_words},
        "wer_answered_turns": {"errors": turn_err, "words": turn_words},
        "bot_transcript": [{"speaker": line.speaker, "text": line.text}
                           for line in notes.transcript],
    }


# ---- offline STT on the same turns ------------------------------------------------------------


async def stt_compare(scenario_files: list[Path], repeats: int) -> dict[str, Any]:
    """Each scripted line, rendered as in the meeting and resampled to 16 kHz, transcribed with
    the bot's Whisper settings (without and with the vocabulary a live session gives it: the
    bot's name and the people; the agenda is only known as the meeting goes) and with
    Whisper's full 30 s window: time and word error rate. ``benchmarks/stt.py`` compares
    voices, vocabulary and models on lines of its own.

    The meeting's own transcripts are the accuracy figure that counts; this isolates STT time
    from everything else and shows what the shorter input window buys, at what accuracy. It
    runs in its own process with the bot's environment, so threads behave as in the bot.
    """
    from meetbot.config import SpeechConfig
    from meetbot.scenario import load_scenario
    from meetbot.session import scenario_voices
    from meetbot.speech.audio import resample
    from meetbot.speech.factory import build_stt
    from meetbot.speech.local_stt import WhisperSTT
    from meetbot.speech.vocabulary import meeting_vocabulary

    voices = scenario_voices()
    lines: list[tuple[Any, str, list[str]]] = []
    for f in scenario_files:
        sc = load_scenario(f)
        voice = {p.name: p.voice for p in sc.participants}
        vocabulary = meeting_vocabulary(sc.bot_name, [p.name for p in sc.participants])
        lines += [(voice[s.speaker], s.say, vocabulary)
                  for s in sc.steps if s.kind == "speak" and s.say]
    audio = []
    for v, text, vocabulary in lines:
        pcm, rate = await voices(v, text)
        audio.append((resample(pcm, rate, 16_000), text, vocabulary))
    configs: dict[str, Any] = {
        "bot (as configured)": build_stt(SpeechConfig()),
        "bot without vocabulary": build_stt(SpeechConfig()),
        "full 30 s window": WhisperSTT(short_input=False),
    }
    # As the bot runs: the meeting's names as vocabulary (the 30 s window gets them too, so
    # the two rows compare windows only).
    with_vocabulary = {"bot (as configured)", "full 30 s window"}
    out: dict[str, Any] = {"lines": len(audio), "configs": {}}
    for stt in configs.values():
        await stt.load()
        await stt.transcribe(audio[0][0])  # warm
    wall: dict[str, list[float]] = {name: [] for name in configs}
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    texts: dict[str, list[str]] = {name: [] for name in configs}
    # Line by line, every configuration in turn: drift in the machine's load hits all alike.
    for pcm, _, vocabulary in audio:
        for name, stt in configs.items():
            stt.set_vocabulary(vocabulary if name in with_vocabulary else [])
            best_wall = best_cpu = float("inf")
            hyp = ""
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                hyp = (await stt.transcribe(pcm)).text
                best_wall = min(best_wall, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            wall[name].append(best_wall * 1000)
            cpu[name].append(best_cpu * 1000)
            texts[name].append(hyp)
    for name in configs:
        errors = words = 0
        for (_, text, _), hyp in zip(audio, texts[name], strict=True):
            e, w = word_errors(text, hyp)
            errors, words = errors + e, words + w
        out["configs"][name] = {
            "ms": stats(wall[name]),
            "cpu_ms": stats(cpu[name]),
            "wer": errors / words if words else None,
            "errors": errors,
            "words": words,
            "audio_s_median": float(np.median([len(p) / 16_000 for p, _, _ in audio])),
            "transcripts": texts[name],
        }
    return out


async def stt_compare_in_child(files: list[Path], args: argparse.Namespace,
                               work: Path) -> dict[str, Any]:
    out = work / "stt-compare.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.latency", "--stt-child", str(out),
        "--scenarios", ",".join(str(f) for f in files), "--stt-repeats", str(args.stt_repeats),
        env=bot_environment(args), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"offline STT comparison failed:\n{err.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


# ---- summary ----------------------------------------------------------------------------------


def summarize(meetings: list[dict[str, Any]]) -> dict[str, Any]:
    def block(ms: list[dict[str, Any]]) -> dict[str, Any]:
        steps = [s for m in ms for s in m["steps"]]
        answered = [s for s in steps if s["stages_ms"] is not None]
        lat = [s["latency_ms"] for s in answered]
        e_m = sum(m["wer_meeting"]["errors"] for m in ms)
        w_m = sum(m["wer_meeting"]["words"] for m in ms)
        e_t = sum(m["wer_answered_turns"]["errors"] for m in ms)
        w_t = sum(m["wer_answered_turns"]["words"] for m in ms)
        return {
            "meetings": len(ms),
            "answered_turns": len(answered),
            "latency_ms": stats(lat),
            "stages_ms_median": {st: median(s["stages_ms"][st] for s in answered)
                                 for st in STAGES},
            "stages_ms_p90": {st: (stats(s["stages_ms"][st] for s in answered) or {}).get(
                "p90") for st in STAGES},
            "tts_leading_silence_ms_median": median(
                s.get("tts_leading_silence_ms") for s in answered),
            "wer_meeting": e_m / w_m if w_m else None,
            "wer_answered_turns": e_t / w_t if w_t else None,
            "checks_passed": sum(1 for s in steps if s["checks_passed"]),
            "steps": len(steps),
            "meetings_passed": sum(1 for m in ms if m["passed"]),
        }

    out = {"all": block(meetings)}
    for name in dict.fromkeys(m["scenario"] for m in meetings):
        out[name] = block([m for m in meetings if m["scenario"] == name])
    return out


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    p = result["params"]
    bot_args = " ".join([*p["bot_arg"], *(f"env {e}" for e in p.get("bot_env", []))])
    bot_args = bot_args or "(defaults)"
    lines = [
        "# Voice-to-voice latency (local models, real WebRTC)",
        "",
        f"Scenarios {', '.join(p['scenarios'])} × {p['repeats']}; bot settings: {bot_args}. "
        f"Machine: {machine_line(result['machine'])}.",
        "",
        md_table(
            ["scenario", "answered turns", "p50 ms", "p90 ms", "WER meeting", "WER answered",
             "checks passed", "target p50"],
            [[name, b["answered_turns"], (b["latency_ms"] or {}).get("p50"),
              (b["latency_ms"] or {}).get("p90"),
              _pct(b["wer_meeting"]), _pct(b["wer_answered_turns"]),
              f"{b['checks_passed']}/{b['steps']}",
              f"≤ {TARGET_MEDIAN_MS:.0f}" if name == "all" else ""]
             for name, b in s.items()],
        ),
        "",
        "Stage breakdown (median / p90 ms over answered turns; the medians of the stages need "
        "not add up to the median total):",
        "",
        md_table(["scenario", *STAGES, "TTS leading silence (in outbound)"],
                 [[name, *[f"{_f(b['stages_ms_median'][st])} / {_f(b['stages_ms_p90'][st])}"
                           for st in STAGES], b["tts_leading_silence_ms_median"]]
                  for name, b in s.items()]),
    ]
    cmp_ = result.get("stt_compare")
    if cmp_:
        lines += [
            "",
            f"Offline STT on the same {cmp_['lines']} scripted turns (median audio "
            f"{next(iter(cmp_['configs'].values()))['audio_s_median']:.1f} s):",
            "",
            md_table(["Whisper input", "p50 ms", "p90 ms", "CPU ms (p50, all threads)", "WER"],
                     [[name, c["ms"]["p50"], c["ms"]["p90"], (c.get("cpu_ms") or {}).get("p50"),
                       _pct(c["wer"])]
                      for name, c in cmp_["configs"].items()]),
        ]
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from meetbot.session import scenario_voices
    from signaling.server import start_server

    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="meetbot-bench-latency-"))
    log.info("logs and intermediate files in %s", work)
    files = [scenario_path(n) for n in args.scenarios.split(",") if n]
    voices = scenario_voices()
    server = await start_server("127.0.0.1", 0)
    meetings = []
    try:
        for rep in range(args.repeats):
            for f in files:
                meetings.append(await run_meeting(f, rep, args, server, voices, work))
    finally:
        await server.close()
    compare = await stt_compare_in_child(files, args, work) if args.stt_compare else None
    params = {"scenarios": [str(f.name) for f in files], "repeats": args.repeats,
              "bot_arg": args.bot_arg, "bot_env": args.bot_env, "grace_s": args.grace_s}
    return {"benchmark": "latency", "params": params, "machine": info,
            "summary": summarize(meetings), "stt_compare": compare, "meetings": meetings,
            "target": {"median_ms": TARGET_MEDIAN_MS}}


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m benchmarks.latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", default="seed,long",
                   help="comma-separated: seed, long, or scenario file paths")
    p.add_argument("--repeats", type=int, default=1, help="times each scenario is played")
    p.add_argument("--bot-arg", action="append", default=[],
                   help="a flag for `meetbot join` (repeatable), e.g. --bot-arg=--vad-end-ms=400")
    p.add_argument("--bot-env", action="append", default=[],
                   help="KEY=VALUE in the bot's environment (repeatable; also used for the "
                   "offline STT comparison), e.g. --bot-env OMP_WAIT_POLICY=PASSIVE")
    p.add_argument("--grace-s", type=float, default=8.0,
                   help="how long a participant waits for a reply to begin")
    p.add_argument("--no-stt-compare", dest="stt_compare", action="store_false",
                   help="skip the offline STT comparison")
    p.add_argument("--stt-repeats", type=int, default=1,
                   help="offline STT: transcriptions per line (the fastest counts)")
    p.add_argument("--stt-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(RESULTS_DIR), help="results directory")
    p.add_argument("--name", default="latency", help="result file name (without extension)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    setup_logging(args.verbose)
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    if args.stt_child:
        files = [scenario_path(n) for n in args.scenarios.split(",") if n]
        compare = asyncio.run(stt_compare(files, args.stt_repeats))
        Path(args.stt_child).write_text(json.dumps(compare, indent=2))
        return 0
    result = asyncio.run(run(args))
    publish(args.name, result, markdown(result), Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
