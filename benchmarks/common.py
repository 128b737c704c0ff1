"""What every benchmark shares: process accounting, statistics, word error rate, child
processes under JSON-line control, small aiortc tracks, and result files.

Why each process measures itself: the benchmarks put the bot in its own process so its CPU time
and memory are attributable, and psutil is not a dependency. ``getrusage`` counts the CPU time of
every thread of the process, including threads that already exited; ``/proc/self/task/*``
splits it per thread, which tells event-loop work from aiortc's decoder and encoder threads;
``/proc/self/status`` gives the resident set.

Why times are medians and ratios: the machine these run on is small and shared, so a single
run says little; every figure in a result file is computed from repeated measurements taken in
the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import os
import platform
import re
import resource
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
SCENARIOS_DIR = BENCH_DIR / "scenarios"
FRAME_S = 0.020
"""The 20 ms frame period of WebRTC audio (and of meetbot's voice clock)."""
_TIME_BASE = fractions.Fraction(1, 48_000)

_CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---- process accounting -----------------------------------------------------------------------


def _stat_fields(path: Path) -> list[str]:
    """Fields of a ``/proc/.../stat`` line after the command name (which may hold spaces)."""
    text = path.read_text()
    return text[text.rindex(")") + 2 :].split()


def thread_cpu_s(pid: int | str = "self") -> dict[int, float]:
    """CPU seconds of each live thread of a process, by thread id."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(task / "stat")
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return out


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident set size now (``rss``) and at its peak (``hwm``), in MiB."""
    out = {"rss": 0.0, "hwm": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            out["rss"] = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            out["hwm"] = int(line.split()[1]) / 1024
    return out


def thread_group(name: str) -> str:
    """Which part of the stack a Python thread name belongs to."""
    if name == "MainThread":
        return "event loop"
    if name.endswith("-decoder"):
        return "aiortc decoder threads"
    if name.startswith(("ThreadPoolExecutor", "asyncio_")):
        return "default executor (aiortc encoders)"
    if name.startswith("whisper"):
        return "whisper (STT)"
    if name.startswith("piper"):
        return "piper (TTS)"
    return "other"


class CpuWindow:
    """CPU time of this process over a window, in total and per group of threads.

    The total comes from ``getrusage`` (microsecond resolution, all threads including ones
    that ended inside the window); the split comes from ``/proc/self/task`` with names from
    ``threading`` (threads started by native libraries count as "native").
    """

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self._threads0 = thread_cpu_s()

    def close(self) -> dict[str, Any]:
        wall = time.monotonic() - self._t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        threads1 = thread_cpu_s()
        names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        groups: dict[str, float] = {}
        for tid, cpu in threads1.items():
            group = thread_group(names[tid]) if tid in names else "native (C library threads)"
            groups[group] = groups.get(group, 0.0) + cpu - self._threads0.get(tid, 0.0)
        user = ru1.ru_utime - self._ru0.ru_utime
        system = ru1.ru_stime - self._ru0.ru_stime
        return {
            "wall_s": wall,
            "cpu_s": user + system,
            "user_s": user,
            "system_s": system,
            "cores": (user + system) / wall if wall > 0 else 0.0,
            "by_thread_group_s": {k: round(v, 3) for k, v in sorted(groups.items())},
            "ctx_switches": (ru1.ru_nvcsw - self._ru0.ru_nvcsw)
            + (ru1.ru_nivcsw - self._ru0.ru_nivcsw),
        }


# ---- statistics -------------------------------------------------------------------------------


def stats(values: Iterable[float]) -> dict[str, float] | None:
    """p50/p90/min/max/mean and the count; None for no values."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return None
    return {
        "p50": round(float(np.percentile(v, 50)), 3),
        "p90": round(float(np.percentile(v, 90)), 3),
        "min": round(float(v.min()), 3),
        "max": round(float(v.max()), 3),
        "mean": round(float(v.mean()), 3),
        "n": len(v),
    }


def median(values: Iterable[float]) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.median(v)) if v else None


def lateness_summary(lateness_s: Sequence[float]) -> dict[str, float]:
    """Summary, in milliseconds, of how far behind their 20 ms slots frames left.

    The figures come from meetbot's voice clock itself (``VoiceSource.frame_lateness``), which
    knows each frame's slot: the bot goes quiet between talkspurts, so a schedule can no longer
    be replayed from send times alone.
    """
    if not lateness_s:
        return {"max": 0.0, "p99": 0.0, "p50": 0.0, "over_20ms": 0, "frames": 0}
    late = np.asarray(lateness_s, dtype=float) * 1000
    return {
        "max": round(float(late.max()), 2),
        "p99": round(float(np.percentile(late, 99)), 2),
        "p50": round(float(np.percentile(late, 50)), 2),
        "over_20ms": int(np.count_nonzero(late > 20.0)),
        "frames": len(late),
    }


def lag_growth_ms(samples: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Whether a receive queue grows: (arrival time, RTP-placed time) pairs over a window.

    The lag of a frame is its arrival minus the time its RTP timestamp says it was due, less
    the smallest such difference seen (network and jitter-buffer delay are constant; what is
    left is queueing). A consumer that keeps up has a flat lag; one that falls behind has a lag
    that climbs across the window. Growth is the median lag of the last third of the window
    minus that of the first third.
    """
    if len(samples) < 6:
        return {"growth": 0.0, "p50": 0.0, "max": 0.0, "frames": len(samples)}
    arr = np.asarray(samples, dtype=float)
    lag = (arr[:, 0] - arr[:, 1]) * 1000
    lag -= lag.min()
    third = len(lag) // 3
    growth = float(np.median(lag[-third:]) - np.median(lag[:third]))
    return {
        "growth": round(growth, 2),
        "p50": round(float(np.median(lag)), 2),
        "max": round(float(lag.max()), 2),
        "frames": len(lag),
    }


def linear_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ys over xs (None with fewer than two distinct xs)."""
    if len(set(xs)) < 2:
        return None
    slope, _ = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(slope)


# ---- word error rate --------------------------------------------------------------------------

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    return str(n)


def normalize_words(text: str) -> list[str]:
    """Lower-case words for scoring: punctuation dropped, "10%" -> "ten percent", "Q3" -> "q
    three", hyphens split. Script and transcript go through the same function, so a number
    written either way scores as the same words."""
    t = text.lower().replace("%", " percent ").replace("-", " ").replace("'", "'")
    t = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", t)
    t = re.sub(r"\d+", lambda m: f" {_number_words(int(m.group()))} ", t)
    return re.findall(r"[a-z']+", t)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words): one Levenshtein alignment."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / words if words else 0.0


# ---- the machine ------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """What the figures were measured on (the README quotes it next to them)."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    versions: dict[str, str] = {}
    for pkg in ("aiortc", "av", "numpy", "ctranslate2", "faster_whisper", "onnxruntime"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[pkg] = version(pkg.replace("_", "-"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_gb, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def machine_line(info: dict[str, Any]) -> str:
    load = ", ".join(f"{x:g}" for x in info["load_avg_at_start"])
    return (f"{info['cpu']}, {info['usable_cores']} cores usable, {info['memory_gb']} GB, "
            f"Linux {info['kernel']}, Python {info['python']}, "
            f"aiortc {info['versions'].get('aiortc', '?')}; load average at start {load}; "
            f"{info['time']}")


# ---- result files -----------------------------------------------------------------------------


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, data: dict[str, Any], markdown: str,
                  out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """``<out_dir>/<name>.json`` and ``.md``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    return json_path, md_path


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aioice", "aiortc", "aiohttp.access", "meetbot", "signaling"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


# ---- child processes under JSON-line control ------------------------------------------------


class ChildError(RuntimeError):
    """A child process failed a command or went away; the message ends with its log."""


def _log_file(log_dir: Path, name: str) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / f"{name}.log"


class Child:
    """A benchmark role in its own process (``python3 -m benchmarks.roles ROLE``).

    Commands are JSON lines on its stdin, answers JSON lines on its stdout; its log goes to a
    file, quoted in errors. Separate processes are what make CPU time and memory attributable
    to the bot rather than to the simulated people talking to it.
    """

    def __init__(self, proc: asyncio.subprocess.Process, name: str, log_path: Path) -> None:
        self.proc = proc
        self.name = name
        self.log_path = log_path
        self.ready: dict[str, Any] = {}
        """The child's first line: its pid and memory before any work."""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(cls, name: str, args: Sequence[str], log_dir: Path,
                    wait_s: float = 60.0) -> Child:
        """Start ``benchmarks.roles`` with ``args`` and wait for its ready line."""
        log_path = _log_file(log_dir, name)
        with log_path.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.roles", *args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                cwd=str(ROOT), limit=1 << 24,
            )
        child = cls(proc, name, log_path)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), wait_s)
        except TimeoutError:
            line = b""
        if not line:
            await child.stop(wait_s=1)
            raise ChildError(f"{name} did not start\n{child.log_tail()}")
        child.ready = json.loads(line)
        return child

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def call(self, cmd: str, wait_s: float = 60.0, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write((json.dumps({"cmd": cmd, **params}) + "\n").encode())
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), wait_s)
        except (TimeoutError, ConnectionError, BrokenPipeError) as exc:
            raise ChildError(f"{self.name}: {cmd!r} got no answer ({exc!r})\n"
                             f"{self.log_tail()}") from exc
        if not line:
            raise ChildError(f"{self.name} exited during {cmd!r}\n{self.log_tail()}")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise ChildError(f"{self.name}: {cmd!r} failed: {answer.get('error')}\n"
                             f"{self.log_tail()}")
        return answer

    async def stop(self, wait_s: float = 15.0) -> None:
        """Ask it to leave cleanly; terminate it (by its own pid) if it does not."""
        if self.proc.returncode is None:
            with contextlib.suppress(ChildError, json.JSONDecodeError):
                await self.call("stop", wait_s=wait_s)
        try:
            await asyncio.wait_for(self.proc.wait(), wait_s)
        except TimeoutError:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# ---- small tracks -----------------------------------------------------------------------------


class IdleTrack(MediaStreamTrack):
    """An audio track that never yields a frame: its peer connection sends no media.

    Used where the room's mesh would otherwise make every simulated person send audio to every
    other one, which would load the machine with traffic nobody measures.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._stopped = asyncio.Event()

    async def recv(self) -> av.AudioFrame:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._stopped.set()
        super().stop()


class SilenceTrack(MediaStreamTrack):
    """Paced 20 ms frames of 48 kHz mono silence, the way aiortc's own example tracks pace.

    The bare receiver's optional outgoing side: what a WebRTC participant that sends nothing
    but silence costs, with no meetbot code in the path.
    """

    kind = "audio"
    _SAMPLES = 960

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += self._SAMPLES
            wait = self._start + self._pts / 48_000 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, self._SAMPLES), np.int16),
                                           format="s16", layout="mono")
        frame.sample_rate = 48_000
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        return frame


@dataclass
class DrainStats:
    """Frames a drained track delivered, and when the last loud one arrived."""

    frames: int = 0
    loud_frames: int = 0
    last_loud_at: float | None = None


async def drain(track: MediaStreamTrack, into: DrainStats, inspect: bool = False) -> None:
    """Take every frame from ``track`` and drop it (aiortc queues frames without bound until
    someone reads them), counting frames; with ``inspect`` also the loud ones."""
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            into.frames += 1
            if not inspect or not isinstance(frame, av.AudioFrame):
                continue
            pcm = frame.to_ndarray()
            if int(np.abs(pcm).max(initial=0)) > 1000:
                into.loud_frames += 1
                into.last_loud_at = time.monotonic()


# ---- speech clips for simulated talkers -------------------------------------------------------

TALK_LINES = (
    "We need to discuss the Q3 budget and plan the product launch.",
    "Marketing is ten percent over, so we agreed to cut the events line.",
    "I will draft the launch announcement by Friday.",
    "The hiring plan needs two more engineers before the end of the quarter.",
    "Let's check the numbers again once finance sends the final report.",
    "The office move is planned for September, and the movers are booked.",
)
"""What simulated talkers say when a benchmark needs speech but no particular script."""


async def render_clips(out_dir: Path, lines: Sequence[str] = TALK_LINES,
                       voice: str = "piper") -> list[Path]:
    """Speak ``lines`` with a scenario voice (the bundled Piper voice) into WAV files.

    Rendered once per benchmark run, before anything is measured, so synthesis never competes
    with the processes under test.
    """
    from meetbot.scenario import parse_voice
    from meetbot.session import scenario_voices
    from meetbot.speech.audio import write_wav

    render = scenario_voices()
    spec = parse_voice(voice, "benchmark voice")
    paths: list[Path] = []
    _log_file(out_dir, "clips")
    for i, line in enumerate(lines):
        pcm, rate = await render(spec, line)
        path = out_dir / f"clip{i}.wav"
        await asyncio.to_thread(write_wav, path, pcm, rate)
        paths.append(path)
    return paths
