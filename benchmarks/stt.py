"""Offline speech-to-text: word error rate per voice family and time per utterance, for the
bot's Whisper with and without the meeting's vocabulary, and for Whisper base.

    python3 -m benchmarks.stt [--voices piper,piper:1.2,espeak:en-us,flite:slt,...]
        [--configs tiny.en-before,tiny.en,tiny.en+vocabulary,base] [--repeats 1]

What it transcribes: ``benchmarks/stt_lines.json``, 40 meeting lines in 8 meetings, each
meeting with its bot name, people and agenda titles (names such as Priya, Siobhan, Ngozi,
Xiomara; words such as "budget numbers", "office move", Wednesday). Every line is rendered in
every voice (Piper, the bundled voice at its own pace and slower; espeak-ng in several
accents; flite's voices), resampled to 16 kHz as the bot's listener does, with 0.2 s of
silence either side (as the VAD's pre-roll and hangover leave it), and transcribed by each
configuration in turn, line by line, so drift in the machine's load hits all alike.

The vocabulary of a line is what a live session gives the recognizer for that meeting
(``meetbot.speech.vocabulary.meeting_vocabulary``: the bot's name, the people, the agenda
titles). The figures:

- **WER**: word error rate (one Levenshtein alignment over normalized words, as in the latency
  benchmark), over all lines and over the *ordinary* lines (those with none of the meeting's
  words: does the vocabulary hurt the rest?);
- **vocabulary words right**: of the meeting's words that occur in the script (names, agenda
  titles), how many the transcript has, spelled the same;
- **empty**: lines that came back as nothing (e.g. dropped as "no speech");
- **ms**: wall time per utterance (the fastest of ``--repeats``), one CTranslate2 thread as the
  bot runs it.

Configurations (``--configs``): ``tiny.en-before`` is the bot as it was (no vocabulary, "no
speech" on Whisper's no-speech probability alone), ``tiny.en`` the current no-speech rule
without vocabulary, ``tiny.en+vocabulary`` (``+hotwords``/``+prompt`` pick the prompt's style),
``base`` / ``base+vocabulary`` Whisper base (``pip install 'meetbot[base]'``), ``+weekdays``
adds the weekdays to the vocabulary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    BENCH_DIR,
    RESULTS_DIR,
    machine_info,
    machine_line,
    md_table,
    normalize_words,
    setup_logging,
    stats,
    word_errors,
)
from benchmarks.report import publish

log = logging.getLogger("benchmarks.stt")

LINES_FILE = BENCH_DIR / "stt_lines.json"
DEFAULT_VOICES = (
    "piper", "piper:1.2",
    "espeak:en-us", "espeak:en-gb", "espeak:en-gb-scotland",
    "flite:slt", "flite:kal", "flite:awb", "flite:rms",
)
DEFAULT_CONFIGS = (
    "tiny.en-before", "tiny.en", "tiny.en+hotwords", "tiny.en+vocabulary",
    "tiny.en+vocabulary+weekdays", "base", "base+vocabulary",
)
FAMILIES = {"piper": "Piper", "espeak": "espeak-ng", "flite": "flite"}
EDGE_S = 0.2
"""Silence either side of a rendered line."""


@dataclass(frozen=True)
class Line:
    meeting: str
    text: str
    bot: str
    participants: tuple[str, ...]
    agenda: tuple[str, ...]
    ordinary: bool

    def vocabulary(self, weekdays: bool = False) -> list[str]:
        from meetbot.speech.vocabulary import meeting_vocabulary

        return meeting_vocabulary(self.bot, self.participants, self.agenda, weekdays=weekdays)

    def vocabulary_in_script(self) -> list[str]:
        """The meeting's words that this line says (as normalized word sequences)."""
        said = " " + " ".join(normalize_words(self.text)) + " "
        out = []
        for word in self.vocabulary():
            norm = " ".join(normalize_words(word))
            if norm and f" {norm} " in said:
                out.append(norm)
        return out


def load_lines(path: Path = LINES_FILE) -> list[Line]:
    data = json.loads(path.read_text(encoding="utf-8"))
    lines = []
    for m in data["meetings"]:
        for raw in m["lines"]:
            lines.append(Line(m["name"], raw["say"], m["bot"], tuple(m["participants"]),
                              tuple(m["agenda"]), bool(raw.get("ordinary", False))))
    return lines


def parse_voice(spec: str) -> Any:
    from meetbot.scenario import Voice

    engine, _, option = spec.partition(":")
    if engine not in FAMILIES:
        raise SystemExit(f"unknown voice {spec!r}: use piper[:PACE], espeak:NAME or flite:NAME")
    if engine == "espeak" and not option:
        option = "en-us"
    if engine == "flite" and not option:
        option = "slt"
    return Voice(engine, option)


async def render_all(lines: list[Line], voices: list[str]) -> dict[str, list[Any]]:
    """Every line in every voice, at 16 kHz with ``EDGE_S`` of silence either side."""
    from meetbot.session import scenario_voices
    from meetbot.speech.audio import resample

    render = scenario_voices()
    edge = np.zeros(int(EDGE_S * 16_000), np.int16)
    out: dict[str, list[Any]] = {}
    for spec in voices:
        voice = parse_voice(spec)
        clips = []
        for line in lines:
            pcm, rate = await render(voice, line.text)
            clips.append(np.concatenate([edge, resample(pcm, rate, 16_000), edge]))
        out[spec] = clips
    return out


@dataclass
class Config:
    """One way of transcribing: an engine, and whether (and how) it gets the vocabulary."""

    name: str
    stt: Any
    vocabulary: bool
    weekdays: bool = False
    times_ms: list[float] = field(default_factory=list)


def make_config(name: str) -> Config | None:
    """``tiny.en-before``, ``tiny.en``, ``base`` and either with ``+vocabulary`` (the engine's
    default style), ``+hotwords``, ``+prompt``, and ``+weekdays``; None (logged) for a model
    that is not installed."""
    from meetbot.speech.base import SpeechError
    from meetbot.speech.local_stt import WhisperSTT, model_dir_for

    model, *options = name.split("+")
    before = model.endswith("-before")
    model = model.removesuffix("-before")
    style = next((o for o in options if o in ("hotwords", "prompt")), None)
    try:
        model_dir = model_dir_for(model)
        if not (model_dir / "model.bin").is_file():
            raise SpeechError(f"no Whisper model at {model_dir}")
    except SpeechError as exc:
        log.warning("skipping %s: %s", name, exc)
        return None
    kwargs: dict[str, Any] = {"model_dir": model_dir}
    if style is not None:
        kwargs["vocabulary_style"] = style
    if before:
        # The rule before: "no speech" on the probability alone, whatever the log-probability.
        kwargs["logprob_threshold"] = float("inf")
    vocabulary = style is not None or "vocabulary" in options
    return Config(name, WhisperSTT(**kwargs), vocabulary, weekdays="weekdays" in options)


async def transcribe_all(lines: list[Line], audio: dict[str, list[Any]], configs: list[Config],
                         repeats: int) -> dict[str, dict[str, list[str]]]:
    """Transcripts[config][voice][line]; each config's times land in ``Config.times_ms``."""
    for c in configs:
        await c.stt.load()
        c.stt.set_vocabulary([])
        await c.stt.transcribe(next(iter(audio.values()))[0])  # warm
    texts: dict[str, dict[str, list[str]]] = {c.name: {v: [] for v in audio} for c in configs}
    total = len(lines) * len(audio)
    done = 0
    for voice, clips in audio.items():
        for line, pcm in zip(lines, clips, strict=True):
            for c in configs:
                c.stt.set_vocabulary(line.vocabulary(c.weekdays) if c.vocabulary else [])
                best = float("inf")
                hyp = ""
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    hyp = (await c.stt.transcribe(pcm)).text
                    best = min(best, time.perf_counter() - t0)
                c.times_ms.append(best * 1000)
                texts[c.name][voice].append(hyp)
            done += 1
            if done % 40 == 0:
                log.info("%d/%d clips", done, total)
    return texts


def score(lines: list[Line], hyps: list[str]) -> dict[str, Any]:
    """WER (all lines, ordinary lines), vocabulary words right, empty transcripts."""
    err = words = o_err = o_words = vocab_hits = vocab_total = empty = 0
    for line, hyp in zip(lines, hyps, strict=True):
        e, w = word_errors(line.text, hyp)
        err, words = err + e, words + w
        if line.ordinary:
            o_err, o_words = o_err + e, o_words + w
        heard = " " + " ".join(normalize_words(hyp)) + " "
        for v in line.vocabulary_in_script():
            vocab_total += 1
            vocab_hits += f" {v} " in heard
        empty += not hyp.strip()
    return {
        "wer": err / words if words else None, "errors": err, "words": words,
        "wer_ordinary": o_err / o_words if o_words else None,
        "errors_ordinary": o_err, "words_ordinary": o_words,
        "vocabulary_right": vocab_hits, "vocabulary_total": vocab_total,
        "empty": empty, "lines": len(lines),
    }


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled scores of several voices (errors and words summed, then divided)."""
    keys = ("errors", "words", "errors_ordinary", "words_ordinary", "vocabulary_right",
            "vocabulary_total", "empty", "lines")
    out: dict[str, Any] = {k: sum(p[k] for p in parts) for k in keys}
    out["wer"] = out["errors"] / out["words"] if out["words"] else None
    out["wer_ordinary"] = (out["errors_ordinary"] / out["words_ordinary"]
                           if out["words_ordinary"] else None)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    info = machine_info()
    lines = load_lines(Path(args.lines))
    voices = [v for v in args.voices.split(",") if v]
    started = time.perf_counter()
    audio = await render_all(lines, voices)
    log.info("rendered %d lines in %d voices in %.0f s", len(lines), len(voices),
             time.perf_counter() - started)
    configs = [c for c in (make_config(n) for n in args.configs.split(",") if n) if c]
    texts = await transcribe_all(lines, audio, configs, args.repeats)
    results: dict[str, Any] = {}
    for c in configs:
        per_voice = {v: score(lines, texts[c.name][v]) for v in voices}
        per_family: dict[str, Any] = {}
        for fam in dict.fromkeys(v.partition(":")[0] for v in voices):
            per_family[FAMILIES[fam]] = merge(
                [s for v, s in per_voice.items() if v.partition(":")[0] == fam])
        results[c.name] = {
            "all": merge(list(per_voice.values())),
            "families": per_family,
            "voices": per_voice,
            "ms": stats(c.times_ms),
            "transcripts": texts[c.name],
        }
    audio_s = [len(p) / 16_000 for clips in audio.values() for p in clips]
    params = {"voices": voices, "configs": [c.name for c in configs], "repeats": args.repeats,
              "lines": len(lines), "meetings": len({ln.meeting for ln in lines}),
              "ordinary_lines": sum(ln.ordinary for ln in lines),
              "audio_s_median": float(np.median(audio_s)),
              "script": [ln.text for ln in lines]}
    return {"benchmark": "stt", "params": params, "machine": info, "results": results}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def markdown(result: dict[str, Any]) -> str:
    p, r = result["params"], result["results"]
    families = list(next(iter(r.values()))["families"])
    lines = [
        "# Offline speech-to-text: voices, vocabulary, model",
        "",
        f"{p['lines']} meeting lines ({p['meetings']} meetings, {p['ordinary_lines']} ordinary "
        f"lines without the meeting's words; median audio {p['audio_s_median']:.1f} s) in "
        f"{len(p['voices'])} voices ({', '.join(p['voices'])}), each transcribed by every "
        f"configuration in turn, fastest of {p['repeats']}. Machine: "
        f"{machine_line(result['machine'])}.",
        "",
        md_table(
            ["configuration", "WER", "WER ordinary lines", "vocabulary words right", "empty",
             "p50 ms", "p90 ms"],
            [[name, _pct(c["all"]["wer"]), _pct(c["all"]["wer_ordinary"]),
              f"{c['all']['vocabulary_right']}/{c['all']['vocabulary_total']}",
              f"{c['all']['empty']}/{c['all']['lines']}", c["ms"]["p50"], c["ms"]["p90"]]
             for name, c in r.items()],
        ),
        "",
        "Word error rate per voice family (vocabulary words right in brackets):",
        "",
        md_table(
            ["configuration", *families],
            [[name, *[f"{_pct(c['families'][f]['wer'])} "
                      f"({c['families'][f]['vocabulary_right']}/"
                      f"{c['families'][f]['vocabulary_total']})" for f in families]]
             for name, c in r.items()],
        ),
        "",
        "Word error rate per voice:",
        "",
        md_table(
            ["configuration", *p["voices"]],
            [[name, *[_pct(c["voices"][v]["wer"]) for v in p["voices"]]]
             for name, c in r.items()],
        ),
    ]
    return "\n".join(lines)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m benchmarks.stt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--voices", default=",".join(DEFAULT_VOICES),
                   help="comma-separated: piper[:PACE], espeak:NAME, flite:NAME")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help="comma-separated: tiny.en-before, tiny.en, base, each optionally with "
                   "+vocabulary / +hotwords / +prompt and +weekdays")
    p.add_argument("--lines", default=str(LINES_FILE), help="the lines file")
    p.add_argument("--repeats", type=int, default=1, help="transcriptions per clip (fastest)")
    p.add_argument("--out", default=str(RESULTS_DIR), help="results directory")
    p.add_argument("--name", default="stt", help="result file name (without extension)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    setup_logging(args.verbose)
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    result = asyncio.run(run(args))
    publish(args.name, result, markdown(result), Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
