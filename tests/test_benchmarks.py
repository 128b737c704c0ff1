"""The benchmarks keep working: each runs end to end with tiny parameters, and the arithmetic
their figures rest on (word error rate, the voice clock's frame lateness, queue growth, the
latency stage split) is checked on known inputs.

The end-to-end runs are real: separate processes, real WebRTC on loopback, the local models.
They check that every figure is produced and consistent, not how fast this machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from benchmarks.common import lag_growth_ms, lateness_summary, normalize_words, wer
from benchmarks.latency import STAGES, match_turn, stage_split
from meetbot.media.outbound import VoiceSource

ROOT = Path(__file__).resolve().parents[1]


def _run(module: str, args: list[str], out: Path, name: str, timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args, "--out", str(out), "--name", name],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (out / f"{name}.md").read_text().startswith("# ")
    data: dict[str, Any] = json.loads((out / f"{name}.json").read_text())
    assert data["machine"]["usable_cores"] >= 1
    return data


# ---- the arithmetic ---------------------------------------------------------------------------


def test_word_error_rate_normalizes_numbers_and_punctuation() -> None:
    assert normalize_words("Marketing is 10% over, Q3!") == [
        "marketing", "is", "ten", "percent", "over", "q", "three"]
    assert wer("Let's give it thirty seconds.", "let's give it 30 seconds") == 0.0
    assert wer("a b c d", "a x c") == pytest.approx(0.5)  # one substitution, one deletion
    assert wer("a b", "a b c d") == pytest.approx(1.0)  # two insertions


async def test_voice_clock_reports_a_stalled_loop_as_late_frames() -> None:
    """The capacity benchmark's lateness comes from the voice clock: a 60 ms stall of the
    event loop shows on the frame after it, an idle gap between talkspurts does not."""
    source = VoiceSource()
    track = source.new_track()
    source.start()
    drained = asyncio.get_running_loop().create_task(_drain_packets(track))
    try:
        speech = np.full(48_000, 3000, np.int16)
        source.enqueue(speech, 48_000)
        await asyncio.sleep(0.3)
        time.sleep(0.060)  # noqa: ASYNC251 - block the loop, as an overloaded bot would
        await source.wait_played("")
        await asyncio.sleep(0.5)  # tail, then idle
        source.enqueue(speech[:9600], 48_000)
        await source.wait_played("")
        await asyncio.sleep(0.2)
    finally:
        await source.stop()
        drained.cancel()
    late = lateness_summary([x for _, x in source.frame_lateness])
    assert 45 <= late["max"] <= 120, late
    # It catches up 10 ms a frame: the next few frames are late by less and less.
    assert 1 <= late["over_20ms"] <= 6 and late["p50"] < 5, late
    assert source.talkspurts == 2


async def _drain_packets(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


def test_lag_growth_tells_a_growing_queue_from_a_flat_one() -> None:
    flat = [(100.0 + 0.02 * k + 0.003 * (k % 3), 0.02 * k) for k in range(300)]
    assert abs(lag_growth_ms(flat)["growth"]) < 5
    growing = [(100.0 + 0.0201 * k, 0.02 * k) for k in range(300)]  # 0.1 ms more per frame
    assert lag_growth_ms(growing)["growth"] == pytest.approx(20.0, abs=1.0)


def test_latency_stages_add_up_to_what_the_participant_measured() -> None:
    step = {"speaker": "Dana", "speech_end": 100.0, "reply_start": 100.9}
    turn = {"speaker_name": "Dana", "speech_end": 100.05, "transcript_ready": 100.6,
            "first_reply_text": 100.61, "first_audio_synth": 100.75,
            "first_audio_sent": 100.76, "extra": {"endpointing": 0.5}}
    assert match_turn(step, [turn, {**turn, "speaker_name": "Lee"}]) is turn
    split = stage_split(step, turn)
    assert split is not None and list(split) == list(STAGES)
    assert sum(split.values()) == pytest.approx(900.0, abs=0.5)
    assert split["endpointing"] == pytest.approx(500.0)
    assert split["stt"] == pytest.approx(50.0)


# ---- each benchmark, end to end, tiny ---------------------------------------------------------


def test_cost_benchmark_runs(tmp_path: Path) -> None:
    data = _run("benchmarks.cost", ["--streams", "2", "--seconds", "2", "--warmup", "0.5",
                                    "--idle-seconds", "0", "--repeats", "1",
                                    "--variants", "bare,bot", "--no-profile",
                                    "--no-frame-costs"],
                tmp_path, "cost", timeout=120)
    variants = data["summary"]["variants"]
    assert set(variants) == {"bare", "bot"}
    for v in variants.values():
        assert v["cores_median"] > 0 and v["us_per_frame_median"] > 0
        assert v["inbound_fps_median"] > 25, "the talkers' audio reached the receiver"
    assert data["summary"]["ratios"]["bot/bare"]["median"] > 0


def test_capacity_benchmark_runs(tmp_path: Path) -> None:
    data = _run("benchmarks.capacity", ["--workers", "1", "--max-meetings", "1",
                                        "--memory-meetings", "1", "--people", "2",
                                        "--seconds", "2", "--settle", "0.5", "--retries", "0"],
                tmp_path, "capacity", timeout=120)
    (ramp,) = data["ramps"]
    (step,) = ramp["steps"]
    assert step["meetings"] == 1 and step["worker_rss_mb"][0] > 0
    assert step["inbound_fps_min"] > 25, "the bot heard both people"
    assert ramp["capacity_meetings"] in (0, 1)


def test_latency_benchmark_runs(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.json"
    scenario.write_text(json.dumps({
        "name": "tiny",
        "participants": [{"name": "Dana", "voice": "piper"}],
        "steps": [{"speaker": "Dana", "say": "Hey assistant, can you help us stay on track today?",
                   "expect": {"reply": True}}],
    }))
    # PASSIVE: on a busy machine OpenMP's spinning threads can make Whisper many times slower.
    data = _run("benchmarks.latency", ["--scenarios", str(scenario), "--grace-s", "30",
                                       "--bot-env", "OMP_WAIT_POLICY=PASSIVE"],
                tmp_path, "latency", timeout=240)
    (meeting,) = data["meetings"]
    (step,) = meeting["steps"]
    assert step["latency_ms"] is not None, "the bot answered"
    assert step["checks_passed"], step["failed_checks"]
    assert step["stages_ms"] is not None
    assert sum(step["stages_ms"].values()) == pytest.approx(step["latency_ms"], abs=1.0)
    assert meeting["wer_meeting"]["words"] == 10
    assert data["summary"]["all"]["latency_ms"]["n"] == 1
    compare = data["stt_compare"]["configs"]
    assert {"bot (as configured)", "full 30 s window"} <= set(compare)
