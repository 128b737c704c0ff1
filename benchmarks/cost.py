"""Cost per participant: the bot's CPU and memory per inbound stream while it listens, against
a bare aiortc receiver measured in the same run on the same machine.

    python3 -m benchmarks.cost [--streams 4] [--seconds 10] [--repeats 3] [--variants ...]

What runs: a room server (in this process), ``--streams`` simulated talkers (one process, each
speaking clips with short gaps, independently of the others) and, in a third process, one of
these receivers, each joined to its own room:

- ``bare``: aiortc peer connections whose inbound tracks are read and dropped
  (``await track.recv()``): RTP, SRTP, jitter buffer and Opus decoding, nothing else. The floor.
- ``bare-send``: the same, and each connection also sends paced 20 ms silence, as any WebRTC
  participant (and the bot) does: the floor of a two-way participant.
- ``bare-send-shared`` (ask for it with ``--variants``): silence encoded once and the same
  packets sent to every peer, which aiortc allows (a track may yield ``av.Packet``): what the
  outgoing side could cost.
- ``bot``: a meetbot ``BotSession`` listening: per participant a ``ParticipantListener``
  (decode, resample to 16 kHz, VAD, utterances) and the bot's voice clock sending silence; its
  persona does nothing with what it hears.
- ``bot-nosend``: the same bot whose peer connections get a track that never yields a frame:
  its listening path alone, without the silence it sends (which is what ``bot`` adds over
  ``bare`` beyond listening).

Each is measured as the CPU seconds of the receiving process over the same window (after the
streams flow and a warm-up), divided by the frames it received in that window (the talkers
share the machine, and a run in which they fell behind delivers fewer frames), and as cores
used. Variants alternate within every repeat, so drift in the machine's load hits all of them
alike; a reported ratio is the median of the per-repeat ratios. One more bot run is profiled
(cProfile of the event-loop thread, on its CPU clock; ``--no-profile`` skips it), and each
per-frame step of the receive and send paths is timed on its own (``--no-frame-costs`` skips
it), to show where the bot's extra time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from benchmarks.common import (
    RESULTS_DIR,
    Child,
    machine_info,
    machine_line,
    md_table,
    median,
    render_clips,
    setup_logging,
)
from benchmarks.report import publish

log = logging.getLogger("benchmarks.cost")

VARIANTS: dict[str, list[str]] = {
    "bare": ["bare", "--send", "none", "--name", "receiver"],
    "bare-send": ["bare", "--send", "silence", "--name", "receiver"],
    "bare-send-shared": ["bare", "--send", "shared", "--name", "receiver"],
    "bot": ["bot", "--persona", "null", "--name", "assistant"],
    "bot-nosend": ["bot", "--persona", "null", "--send", "none", "--name", "assistant"],
}
TARGET_RATIO = 1.3


async def measure_once(variant: str, url: str, args: argparse.Namespace, clips: list[Path],
                       log_dir: Path, seed: int, profile: bool = False) -> dict[str, Any]:
    """One receiver, ``args.streams`` talkers, one measured window. Returns the figures."""
    receiver = await Child.start(f"{variant}-{seed}{'-profile' if profile else ''}",
                                 VARIANTS[variant], log_dir)
    talkers: Child | None = None
    try:
        await receiver.call("join", url=url)
        idle = None
        idle_rss = None
        if args.idle_seconds > 0:
            idle_m = await receiver.call("measure", seconds=args.idle_seconds,
                                         wait_s=args.idle_seconds + 30)
            idle, idle_rss = idle_m["cpu"], idle_m["memory_mb"]["rss"]
        talkers = await Child.start(f"talkers-{variant}-{seed}", ["talkers", "--seed",
                                                                  str(seed)], log_dir)
        names = [f"talker{i + 1}" for i in range(args.streams)]
        await talkers.call("add", url=url, names=names, clips=[str(c) for c in clips],
                           mode="overlap", wait_s=60)
        await receiver.call("wait_streams", n=args.streams, within_s=40, wait_s=60)
        await asyncio.sleep(args.warmup)
        rec, tal = await asyncio.gather(
            receiver.call("measure", seconds=args.seconds, profile=profile,
                          wait_s=args.seconds + 60),
            talkers.call("measure", seconds=args.seconds, wait_s=args.seconds + 60),
        )
    finally:
        await receiver.stop()
        if talkers is not None:
            await talkers.stop()
    fps = [f for s in rec["sessions"] for f in s["inbound_fps"]]
    frames = sum(fps) * rec["cpu"]["wall_s"]
    return {
        "variant": variant,
        "repeat": seed,
        "cores": rec["cpu"]["cores"],
        "cores_per_stream": rec["cpu"]["cores"] / args.streams,
        # CPU per received frame: fair even when the talkers (on the same machine) fell
        # behind and delivered fewer frames in one run than in another.
        "us_per_frame": rec["cpu"]["cpu_s"] / frames * 1e6 if frames else None,
        "cpu": rec["cpu"],
        "idle_cpu": idle,
        "memory_mb": rec["memory_mb"],
        "memory_at_start_mb": receiver.ready.get("memory_mb"),
        # What the streams added to the resident set: after they flowed, less before they came.
        "rss_per_stream_mb": (rec["memory_mb"]["rss"] - idle_rss) / args.streams
        if idle_rss is not None else None,
        "inbound_fps": fps,
        "talkers_cores": tal["cpu"]["cores"],
        "profile": rec.get("profile"),
    }


async def frame_costs(clip: Path, frames: int = 1500, batches: int = 5) -> dict[str, float]:
    """CPU microseconds per 20 ms frame of each step on the receive and send paths, timed on
    this thread's CPU clock (so other work on the machine does not count), median of batches.

    The inbound steps are what every receiver does (aiortc's decode) and what meetbot adds per
    participant (resample to 16 kHz mono, webrtcvad, the RTP-time arithmetic); the outbound
    steps are what aiortc does per peer connection for every frame a track yields.
    """
    import fractions
    import time

    import av
    import numpy as np
    import webrtcvad
    from aiortc.codecs.opus import OpusDecoder, OpusEncoder
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtp import compute_audio_level_dbov

    from meetbot.speech.audio import read_wav, resample

    pcm, rate = read_wav(clip)
    pcm48 = resample(pcm, rate, 48_000)
    n = len(pcm48) // 960
    tb = fractions.Fraction(1, 48_000)

    def mono_frame(i: int) -> av.AudioFrame:
        f = av.AudioFrame.from_ndarray(pcm48[(i % n) * 960:(i % n + 1) * 960].reshape(1, -1),
                                       format="s16", layout="mono")
        f.sample_rate, f.pts, f.time_base = 48_000, i * 960, tb
        return f

    encoder = OpusEncoder()
    packets = []
    for i in range(n):
        payloads, ts = encoder.encode(mono_frame(i))
        packets += [JitterFrame(p, ts) for p in payloads]
    decoder = OpusDecoder()
    decoded = [f for p in packets for f in decoder.decode(p)]
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
    vad = webrtcvad.Vad(2)

    def timed(step: Any) -> float:
        per_batch = []
        for _ in range(batches):
            t0 = time.thread_time()
            for i in range(frames // batches):
                step(i)
            per_batch.append((time.thread_time() - t0) / (frames // batches) * 1e6)
        return round(float(np.median(per_batch)), 1)

    fresh_decoder = OpusDecoder()
    fresh_encoder = OpusEncoder()
    vad_pcm = [np.ascontiguousarray(resample(pcm, rate, 16_000)[k * 320:(k + 1) * 320])
               for k in range(len(pcm) * 16_000 // rate // 320)]
    # The whole listening path as the bot runs it, against a bare read loop, on the same
    # decoded frames delivered one per event-loop turn (as a remote track delivers them).
    bare_us = await _read_loop_us(decoded, frames, listener=False)
    listener_us = await _read_loop_us(decoded, frames, listener=True)
    return {
        "in: read loop, `await track.recv()` (what the bare receiver adds)": round(bare_us, 1),
        "in: ParticipantListener, whole path (meetbot; instead of the read loop)": round(
            listener_us, 1),
        "in: Opus decode (aiortc, every receiver)": timed(
            lambda i: fresh_decoder.decode(packets[i % len(packets)])),
        "in: resample 48 kHz stereo -> 16 kHz mono (meetbot)": timed(
            lambda i: [o.to_ndarray() for o in resampler.resample(decoded[i % len(decoded)])]),
        "in: webrtcvad on 20 ms (meetbot)": timed(
            lambda i: vad.is_speech(vad_pcm[i % len(vad_pcm)].tobytes(), 16_000)),
        "in: RTP time as Fraction -> float (meetbot)": timed(
            lambda i: float(decoded[i % len(decoded)].pts * decoded[i % len(decoded)].time_base)),
        "out: build a 20 ms frame (per frame)": timed(mono_frame),
        "out: RTP audio level in Python (aiortc, per peer)": timed(
            lambda i: compute_audio_level_dbov(mono_frame(i))),
        "out: Opus encode, stereo 96 kb/s (aiortc, per peer)": timed(
            lambda i: fresh_encoder.encode(mono_frame(i))),
    }


class _ReplayTrack(MediaStreamTrack):
    """Decoded frames, one per event-loop turn, with advancing RTP times; ends after ``n``."""

    kind = "audio"

    def __init__(self, frames: list[Any], n: int) -> None:
        super().__init__()
        self._frames = frames
        self._n = n
        self._i = 0
        self.done = asyncio.Event()

    async def recv(self) -> Any:
        if self._i >= self._n:
            self.done.set()
            raise MediaStreamError
        await asyncio.sleep(0)
        frame = self._frames[self._i % len(self._frames)]
        frame.pts = self._i * 960
        self._i += 1
        return frame


async def _read_loop_us(frames: list[Any], n: int, listener: bool) -> float:
    """CPU µs per frame of reading ``n`` frames with meetbot's listener or a bare loop."""
    import time

    from meetbot.config import VadConfig
    from meetbot.events import Participant
    from meetbot.media.inbound import ParticipantListener

    track = _ReplayTrack(frames, n)
    t0 = time.thread_time()
    if listener:
        lis = ParticipantListener(Participant("p", "p"), track, VadConfig(), lambda _u: None,
                                  lambda _e: None, lambda _u: None)
        lis.start()
        await track.done.wait()
        cpu = time.thread_time() - t0
        await lis.stop()
    else:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
        cpu = time.thread_time() - t0
    return cpu / n * 1e6


def summarize(runs: list[dict[str, Any]], streams: int) -> dict[str, Any]:
    """Medians per variant and the paired (same-repeat) ratios against the bare receiver."""
    variants = sorted({r["variant"] for r in runs}, key=list(VARIANTS).index)
    out: dict[str, Any] = {"variants": {}, "ratios": {}}
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        groups = sorted({g for r in rs for g in r["cpu"]["by_thread_group_s"]})
        out["variants"][v] = {
            "runs": len(rs),
            "cores_median": median(r["cores"] for r in rs),
            "cores_per_stream_median": median(r["cores_per_stream"] for r in rs),
            "us_per_frame_median": median(r["us_per_frame"] for r in rs),
            "us_per_frame_all": [round(r["us_per_frame"] or 0, 1) for r in rs],
            "cores_all": [round(r["cores"], 4) for r in rs],
            "idle_cores_median": median(r["idle_cpu"]["cores"] for r in rs if r["idle_cpu"]),
            "rss_mb_median": median(r["memory_mb"]["rss"] for r in rs),
            "rss_per_stream_mb_median": median(r["rss_per_stream_mb"] for r in rs),
            "rss_at_start_mb_median": median(r["memory_at_start_mb"]["rss"] for r in rs
                                             if r["memory_at_start_mb"]),
            "inbound_fps_median": median(f for r in rs for f in r["inbound_fps"]),
            "cores_by_thread_group": {
                g: median(r["cpu"]["by_thread_group_s"].get(g, 0.0) / r["cpu"]["wall_s"]
                          for r in rs) for g in groups},
        }
    def paired(v: str, base_v: str) -> list[float]:
        """v / base_v in CPU per received frame, over repeats that ran both."""
        out_: list[float] = []
        for r in runs:
            base = [b for b in runs if b["variant"] == base_v and b["repeat"] == r["repeat"]]
            if r["variant"] == v and base and base[0]["us_per_frame"] and r["us_per_frame"]:
                out_.append(r["us_per_frame"] / base[0]["us_per_frame"])
        return out_

    pairs = [(v, "bare") for v in variants if v != "bare"]
    if "bare-send" in variants:
        pairs += [(v, "bare-send") for v in ("bot",) if v in variants]
    for v, base_v in pairs:
        ratios = paired(v, base_v)
        if ratios:
            out["ratios"][f"{v}/{base_v}"] = {"median": median(ratios),
                                              "all": [round(x, 3) for x in ratios]}
    out["streams"] = streams
    return out


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    p = result["params"]
    lines = [
        "# Cost per participant (inbound streams, listening)",
        "",
        f"{p['streams']} talkers, {p['seconds']:g} s measured per run after {p['warmup']:g} s "
        f"warm-up, {p['repeats']} repeats (variants alternate). Machine: "
        f"{machine_line(result['machine'])}.",
        "",
        md_table(
            ["receiver", "µs CPU per received frame", "% of a core per stream (50 frames/s)",
             "cores used", "idle cores", "RSS MB", "MB per stream", "inbound fps"],
            [[v, d["us_per_frame_median"], (d["us_per_frame_median"] or 0) * 50 / 1e4,
              d["cores_median"], d["idle_cores_median"], d["rss_mb_median"],
              d["rss_per_stream_mb_median"], d["inbound_fps_median"]]
             for v, d in s["variants"].items()],
        ),
        "",
        "Ratios of CPU per received frame, paired within each repeat:",
        "",
        md_table(["ratio", "median", "each repeat", "target"],
                 [[k, r["median"], ", ".join(f"{x:.2f}" for x in r["all"]),
                   f"≤ {TARGET_RATIO}" if k == "bot/bare" else ""]
                  for k, r in s["ratios"].items()]),
        "",
        "Where the time goes (cores, median per thread group):",
        "",
        md_table(["receiver", *sorted({g for d in s["variants"].values()
                                         for g in d["cores_by_thread_group"]})],
                 [[v, *[d["cores_by_thread_group"].get(g) for g in sorted(
                     {g for d2 in s["variants"].values() for g in d2["cores_by_thread_group"]})]]
                  for v, d in s["variants"].items()]),
    ]
    if result.get("frame_costs"):
        costs = result["frame_costs"]
        build = costs.get("out: build a 20 ms frame (per frame)", 0.0)
        lines += ["", "CPU per 20 ms frame of each step, in one thread, on its CPU clock (steps "
                  "marked *out* include building the frame, shown on its own; a stream is 50 "
                  "frames a second, so 200 µs per frame is 1 % of a core):", "",
                  md_table(["step", "µs per frame", "% of a core at 50 frames/s"],
                           [[k, v, v * 50 / 1e4] for k, v in costs.items()]),
                  "", f"(building the frame alone: {build:g} µs)"]
    if result.get("profile"):
        lines += ["", "Profile of the bot's event-loop thread (cProfile on the thread's CPU clock, "
                  "one extra run):", "",
                  "```", result["profile"].rstrip(), "```"]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from signaling.server import start_server

    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="meetbot-bench-cost-"))
    log.info("logs and intermediate files in %s", work)
    clips = await render_clips(work / "clips")
    server = await start_server("127.0.0.1", 0)
    runs: list[dict[str, Any]] = []
    profile = None
    try:
        variants = [v for v in args.variants.split(",") if v]
        for rep in range(args.repeats):
            order = variants[rep % len(variants):] + variants[:rep % len(variants)]
            for variant in order:
                url = server.room_url(f"cost-{variant}-{rep}")
                r = await measure_once(variant, url, args, clips, work / "logs", rep)
                log.info("%s repeat %d: %.3f cores, %.0f µs per frame", variant, rep,
                         r["cores"], r["us_per_frame"] or 0)
                runs.append(r)
        if args.profile and "bot" in variants:
            url = server.room_url("cost-bot-profile")
            r = await measure_once("bot", url, args, clips, work / "logs", args.repeats,
                                   profile=True)
            profile = r["profile"]
    finally:
        await server.close()
    for r in runs:
        r.pop("profile", None)
    costs = await frame_costs(clips[0]) if args.frame_costs else None
    params = {k: getattr(args, k) for k in ("streams", "seconds", "warmup", "repeats",
                                             "idle_seconds", "variants")}
    return {"benchmark": "cost", "params": params, "machine": info,
            "summary": summarize(runs, args.streams), "runs": runs, "profile": profile,
            "frame_costs": costs,
            "target": {"bot/bare": TARGET_RATIO}}


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m benchmarks.cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=4, help="inbound participants (default 4)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of flow before measuring")
    p.add_argument("--idle-seconds", type=float, default=2.0,
                   help="also measure each receiver with no participants (0: skip)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default="bare,bare-send,bot,bot-nosend",
                   help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--no-profile", dest="profile", action="store_false",
                   help="skip the extra profiled bot run")
    p.add_argument("--no-frame-costs", dest="frame_costs", action="store_false",
                   help="skip timing each per-frame step on its own")
    p.add_argument("--out", default=str(RESULTS_DIR), help="results directory")
    p.add_argument("--name", default="cost", help="result file name (without extension)")
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
