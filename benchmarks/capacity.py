"""Capacity: how many concurrent four-person meetings one bot process holds, and with more
worker processes, while every outgoing frame stays on time and no inbound queue grows.

    python3 -m benchmarks.capacity [--workers 1,2] [--max-meetings 12] [--seconds 8]

What runs: a room server (in this process), ``W`` bot worker processes
(``benchmarks.roles bot --probe``; the ``echo`` persona by default, which replays every
utterance, so the bot both listens and speaks) and a talkers process whose four simulated
people per meeting take turns speaking. Meetings are added one at a time (round-robin over the
workers); after each, the load settles and every process is measured over the same window:

- **outgoing frames on time**: each session's voice clock (``VoiceSource.frame_times``)
  against its 20 ms schedule; the meeting holds while no frame is later than ``--late-ms``
  (20 ms) and the clock never had to skip ahead (``late_resyncs``);
- **no inbound queue grows**: per participant stream, the arrival of each frame at the
  listener minus its RTP time (see ``common.lag_growth_ms``); it holds while that lag grows by
  less than ``--growth-ms`` (20 ms, one frame) across the window;
- **memory**: each worker's resident set after each meeting; memory per extra meeting is the
  least-squares slope over the ramp.

A window that fails is measured once more (``--retries``) before the ramp stops, because one
scheduling hiccup on a shared machine is not the bot running out of room; the ramp goes on to
``--memory-meetings`` (4) regardless, for the memory slope, without counting those as held. If
the talkers' own clocks run late, the run is marked as limited by the load generator, not by the
bot: both share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import (
    RESULTS_DIR,
    Child,
    linear_slope,
    machine_info,
    machine_line,
    md_table,
    median,
    render_clips,
    setup_logging,
)
from benchmarks.report import publish

log = logging.getLogger("benchmarks.capacity")

TARGET_MB_PER_MEETING = 30.0
PEOPLE = ("Dana", "Lee", "Sam", "Kim", "Ana", "Raj", "Eve", "Tom")


def judge(workers: list[dict[str, Any]], talkers: list[dict[str, Any]],
          late_ms: float, growth_ms: float) -> dict[str, Any]:
    """Whether one measured window held, and what broke if not."""
    worst_late = 0.0
    worst_growth = 0.0
    skips = 0
    for w in workers:
        for s in w["sessions"]:
            worst_late = max(worst_late, s["voice_lateness_ms"]["max"])
            skips += s["late_resyncs"]
        for lag in w["inbound_lag_ms"]:
            worst_growth = max(worst_growth, lag["growth"])
    problems: list[str] = []
    if worst_late > late_ms:
        problems.append(f"an outgoing frame {worst_late:.0f} ms late")
    if skips:
        problems.append(f"voice clock skipped ahead {skips}x")
    if worst_growth > growth_ms:
        problems.append(f"inbound lag grew {worst_growth:.0f} ms")
    load_late = max((t["talker_voice_lateness_ms"]["max"] for t in talkers), default=0.0)
    load_resyncs = sum(t["talker_resyncs"] for t in talkers)
    load_limited = load_late > late_ms or load_resyncs > 0
    return {
        "held": not problems,
        "problems": problems,
        "worst_voice_late_ms": worst_late,
        "worst_inbound_growth_ms": worst_growth,
        "load_generator_late_ms": load_late,
        "load_generator_resyncs": load_resyncs,
        "load_limited": load_limited,
    }


async def ramp(n_workers: int, args: argparse.Namespace, url_for: Any, clips: list[Path],
               log_dir: Path, rep: int = 0) -> dict[str, Any]:
    """Add meetings until one window fails (after retries) or ``--max-meetings``."""
    bot_args = ["bot", "--persona", args.persona, "--probe", "--data-dir",
                str(log_dir / "notes")]
    workers = [await Child.start(f"w{n_workers}-r{rep}-worker{i}", bot_args, log_dir)
               for i in range(n_workers)]
    talkers = [await Child.start(f"w{n_workers}-r{rep}-talkers{i}",
                                 ["talkers", "--seed", str(rep * 10 + i)], log_dir)
               for i in range(args.talker_procs)]
    per_worker = [0] * n_workers
    steps: list[dict[str, Any]] = []
    baseline = [w.ready["memory_mb"]["rss"] for w in workers]
    try:
        for m in range(args.max_meetings):
            wi = m % n_workers
            url = url_for(f"cap-w{n_workers}-r{rep}-m{m}")
            await workers[wi].call("join", url=url, wait_s=120)
            names = [PEOPLE[i % len(PEOPLE)] for i in range(args.people)]
            await talkers[m % len(talkers)].call(
                "add", url=url, names=names, clips=[str(c) for c in clips], mode="turns",
                wait_s=120)
            per_worker[wi] += 1
            await workers[wi].call("wait_streams", n=args.people, within_s=60, wait_s=90)
            await talkers[m % len(talkers)].call("wait_hearing", within_s=60, wait_s=90)
            meetings = m + 1
            verdict: dict[str, Any] = {}
            failed_before = any(not st["held"] for st in steps)
            for attempt in range(1 if failed_before else args.retries + 1):
                await asyncio.sleep(args.settle)
                results = await asyncio.gather(
                    *(w.call("measure", seconds=args.seconds, wait_s=args.seconds + 60)
                      for w in workers),
                    *(t.call("measure", seconds=args.seconds, wait_s=args.seconds + 60)
                      for t in talkers))
                wr, tr = list(results[:n_workers]), list(results[n_workers:])
                verdict = judge(wr, tr, args.late_ms, args.growth_ms)
                verdict["attempt"] = attempt + 1
                if verdict["held"]:
                    break
            step = {
                "meetings": meetings,
                "per_worker": list(per_worker),
                **verdict,
                "worker_cores": [w["cpu"]["cores"] for w in wr],
                "worker_rss_mb": [w["memory_mb"]["rss"] for w in wr],
                "worker_by_thread_group_cores": [
                    {g: round(s / w["cpu"]["wall_s"], 4)
                     for g, s in w["cpu"]["by_thread_group_s"].items()} for w in wr],
                "talker_cores": [t["cpu"]["cores"] for t in tr],
                "voice_late_p99_ms": max(s["voice_lateness_ms"]["p99"]
                                         for w in wr for s in w["sessions"]),
                "inbound_fps_min": min((f for w in wr for s in w["sessions"]
                                        for f in s["inbound_fps"]), default=None),
            }
            steps.append(step)
            log.info("W=%d M=%d: %s (late %.1f ms, growth %.1f ms, cores %s, rss %s)",
                     n_workers, meetings, "held" if step["held"] else step["problems"],
                     step["worst_voice_late_ms"], step["worst_inbound_growth_ms"],
                     [round(c, 2) for c in step["worker_cores"]],
                     [round(r) for r in step["worker_rss_mb"]])
            if any(not st["held"] for st in steps) and meetings >= args.memory_meetings:
                break
    finally:
        for child in [*talkers, *workers]:
            await child.stop()
    held = [s["meetings"] for s in steps if s["held"]]
    capacity = 0
    for s in steps:  # the largest M such that every M' <= M held
        if not s["held"]:
            break
        capacity = s["meetings"]
    mb_slopes = []
    for wi in range(n_workers):
        xs = [0, *(s["per_worker"][wi] for s in steps)]
        ys = [baseline[wi], *(s["worker_rss_mb"][wi] for s in steps)]
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x >= 1]
        slope = linear_slope([p[0] for p in pts], [p[1] for p in pts])
        if slope is not None:
            mb_slopes.append(slope)
    first_fail = next((s for s in steps if not s["held"]), None)
    # Per meeting from the steps that held (a starved bot uses less CPU than it needs); with
    # none held, from the first step, one meeting on one worker.
    fair = [s for s in steps if s["held"]] or steps[:1]
    cores_per_meeting = [sum(s["worker_cores"]) / s["meetings"] for s in fair]
    return {
        "workers": n_workers,
        "repeat": rep,
        "capacity_meetings": capacity,
        "reached_max": capacity == args.max_meetings,
        "held_meetings": held,
        "first_failure": first_fail,
        "limited_by_load_generator": bool(first_fail and first_fail["load_limited"]),
        "worker_rss_at_start_mb": baseline,
        "mb_per_extra_meeting": median(mb_slopes),
        "mb_per_extra_meeting_by_worker": mb_slopes,
        "bot_cores_per_meeting_median": median(cores_per_meeting),
        "steps": steps,
    }


def summarize(ramps: list[dict[str, Any]]) -> dict[str, Any]:
    """Per worker count: medians over the repeated ramps."""
    out: dict[str, Any] = {}
    for n in dict.fromkeys(r["workers"] for r in ramps):
        rs = [r for r in ramps if r["workers"] == n]
        out[str(n)] = {
            "ramps": len(rs),
            "capacity_meetings_median": median(r["capacity_meetings"] for r in rs),
            "capacity_meetings_all": [r["capacity_meetings"] for r in rs],
            "mb_per_extra_meeting_median": median(r["mb_per_extra_meeting"] for r in rs
                                                  if r["mb_per_extra_meeting"] is not None),
            "bot_cores_per_meeting_median": median(r["bot_cores_per_meeting_median"]
                                                   for r in rs),
            "worker_rss_at_start_mb_median": median(x for r in rs
                                                    for x in r["worker_rss_at_start_mb"]),
            "first_failures": ["; ".join(r["first_failure"]["problems"])
                               + (" (load generator late too)"
                                  if r["first_failure"]["load_limited"] else "")
                               if r["first_failure"] else "none (max tried)" for r in rs],
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    p = result["params"]
    lines = [
        "# Capacity: concurrent meetings per bot process",
        "",
        f"Meetings of {p['people']} simulated people taking turns, bot persona "
        f"`{p['persona']}`; each step measured over {p['seconds']:g} s after {p['settle']:g} s "
        f"settling; a meeting count holds when no outgoing frame is over {p['late_ms']:g} ms "
        f"late, the voice clock never skips, and no inbound lag grows over "
        f"{p['growth_ms']:g} ms; {p['repeats']} ramp(s) per worker count, up to "
        f"{p['max_meetings']} meetings. Machine: {machine_line(result['machine'])}.",
        "",
        md_table(
            ["workers", "meetings held (median)", "each ramp", "first failure",
             "MB per extra meeting", "bot cores per meeting", "worker RSS at start MB"],
            [[n, d["capacity_meetings_median"],
              ", ".join(str(x) for x in d["capacity_meetings_all"]),
              " / ".join(d["first_failures"]), d["mb_per_extra_meeting_median"],
              d["bot_cores_per_meeting_median"], d["worker_rss_at_start_mb_median"]]
             for n, d in result["summary"].items()],
        ),
        "",
        "Every step:",
        "",
        md_table(
            ["workers", "ramp", "meetings", "held", "worst frame late ms", "p99 late ms",
             "inbound lag growth ms", "bot cores", "talker cores", "bot RSS MB"],
            [[r["workers"], r["repeat"] + 1, s["meetings"], "yes" if s["held"] else "no",
              s["worst_voice_late_ms"], s["voice_late_p99_ms"], s["worst_inbound_growth_ms"],
              ", ".join(f"{c:.2f}" for c in s["worker_cores"]),
              ", ".join(f"{c:.2f}" for c in s["talker_cores"]),
              ", ".join(f"{x:.0f}" for x in s["worker_rss_mb"])]
             for r in result["ramps"] for s in r["steps"]],
        ),
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from signaling.server import start_server

    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="meetbot-bench-capacity-"))
    log.info("logs and intermediate files in %s", work)
    clips = await render_clips(work / "clips")
    server = await start_server("127.0.0.1", 0, max_room_size=16)
    ramps = []
    try:
        for rep in range(args.repeats):
            for n in (int(x) for x in args.workers.split(",") if x):
                ramps.append(await ramp(n, args, server.room_url, clips, work / "logs", rep))
    finally:
        await server.close()
    params = {k: getattr(args, k) for k in (
        "workers", "max_meetings", "memory_meetings", "people", "seconds", "settle", "retries",
        "late_ms", "growth_ms", "persona", "talker_procs", "repeats")}
    return {"benchmark": "capacity", "params": params, "machine": info,
            "summary": summarize(ramps), "ramps": ramps,
            "target": {"mb_per_extra_meeting": TARGET_MB_PER_MEETING}}


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m benchmarks.capacity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="1,2",
                   help="comma-separated worker-process counts to ramp (default 1,2)")
    p.add_argument("--max-meetings", type=int, default=10)
    p.add_argument("--memory-meetings", type=int, default=4,
                   help="keep adding meetings up to this many even after a window fails, so "
                   "memory per meeting has enough points (they do not count as held)")
    p.add_argument("--people", type=int, default=4, help="participants per meeting")
    p.add_argument("--seconds", type=float, default=8.0, help="measured window per step")
    p.add_argument("--settle", type=float, default=2.0, help="seconds before each window")
    p.add_argument("--retries", type=int, default=1, help="re-measures of a failed window")
    p.add_argument("--repeats", type=int, default=1,
                   help="ramps per worker count (the table gives medians)")
    p.add_argument("--late-ms", type=float, default=20.0, help="max outgoing frame lateness")
    p.add_argument("--growth-ms", type=float, default=20.0, help="max inbound lag growth")
    p.add_argument("--persona", choices=("echo", "null", "assistant"), default="echo")
    p.add_argument("--talker-procs", type=int, default=1,
                   help="processes for the simulated people")
    p.add_argument("--out", default=str(RESULTS_DIR), help="results directory")
    p.add_argument("--name", default="capacity", help="result file name (without extension)")
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
