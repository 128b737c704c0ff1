"""Per-turn latency records: one JSON line per bot turn and per-meeting p50/p90 summaries."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from meetbot.events import TurnTiming

log = logging.getLogger(__name__)

STAGES = ("stt", "brain", "tts_first_audio", "send")
"""Stage durations derived from a ``TurnTiming``, in order along the pipeline."""


def stage_durations(t: TurnTiming) -> dict[str, float]:
    """Milliseconds spent in each stage of one turn (stages not reached are left out)."""
    points = [t.speech_end, t.transcript_ready, t.first_reply_text, t.first_audio_synth,
              t.first_audio_sent]
    out: dict[str, float] = {}
    for name, start, end in zip(STAGES, points, points[1:], strict=False):
        if start is not None and end is not None:
            out[name] = round((end - start) * 1000, 1)
    if t.first_audio_sent is not None:
        out["speech_end_to_first_audio_sent"] = round((t.first_audio_sent - t.speech_end) * 1000, 1)
    if "endpointing" in t.extra:
        out["endpointing"] = round(t.extra["endpointing"] * 1000, 1)
    return out


class LatencyLog:
    """Collects turn timings; appends each as a JSON line when a path is given."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.turns: list[TurnTiming] = []
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, timing: TurnTiming) -> None:
        self.turns.append(timing)
        line = {**asdict(timing), "stages_ms": stage_durations(timing)}
        log.info("turn latency %s: %s", timing.speaker_name, line["stages_ms"])
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")

    def summary(self) -> dict[str, Any]:
        """p50/p90 of every stage over the turns that reached it."""
        per_stage: dict[str, list[float]] = {}
        for t in self.turns:
            for stage, ms in stage_durations(t).items():
                per_stage.setdefault(stage, []).append(ms)
        return {
            stage: {
                "p50": float(np.percentile(v, 50)),
                "p90": float(np.percentile(v, 90)),
                "n": len(v),
            }
            for stage, v in per_stage.items()
        }
