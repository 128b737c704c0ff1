"""Real people in real browsers: headless Chromium (Debian's) driven by Playwright.

A :class:`BrowserPerson` is one Chromium process with one tab on the room page. Its microphone
is Chromium's fake capture device playing a WAV file (or it has none: permission denied), and
everything it learns comes from what the page shows (the DOM) and what WebRTC itself reports
(``getStats()``, recordings of the remote streams made inside the page with WebAudio).

Nothing is downloaded: Playwright drives the system ``chromium`` (``.ci/run`` installs it) over
its own protocol; ``playwright install`` is never needed.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from meetbot.events import PCM16
from meetbot.speech.audio import resample, write_wav

if TYPE_CHECKING:  # the package may be missing; chromium_problem() then says so
    from playwright.async_api import Browser, Page, Playwright, ViewportSize
else:
    ViewportSize = dict

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"
"""Screenshots and recordings of the browser tests (gitignored)."""

CHROMIUM_ENV = "MEETBOT_CHROMIUM"
"""Overrides the browser executable (default: ``chromium`` on the PATH, as Debian installs it)."""

REQUIRE_ENV = "MEETBOT_REQUIRE_BROWSER"
"""Set (CI sets it) to make a missing browser a failure instead of a skip."""

FAKE_MIC_RATE = 48_000

CHROMIUM_FLAGS = (
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # A background tab must keep its timers and audio running like a foreground one.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)
"""Flags every browser in the tests gets (Playwright adds a fresh profile and headless mode)."""

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 720}

Mic = Path | Literal["denied", "missing"]
"""A WAV the fake microphone plays, a microphone the person blocks, or none at all."""


def chromium_executable() -> str | None:
    """The Chromium to drive, or None when there is none."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@functools.cache
def chromium_problem() -> str | None:
    """Why Chromium cannot run a page here (None when it can); checked once per process.

    Starts the browser headless on a tiny page, as the tests will, so that a broken install or
    a machine that cannot run it at all is told apart from a failing test.
    """
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the Python 'playwright' package is missing (pip install -e '.[dev]')"
    exe = chromium_executable()
    if exe is None:
        return (f"no Chromium: install Debian's 'chromium' (.ci/run does) or set {CHROMIUM_ENV}")
    with tempfile.TemporaryDirectory(prefix="meetbot-chromium-check-") as profile:
        try:
            done = subprocess.run(
                [exe, "--headless=new", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 "--dump-dom", "data:text/html,<p>meetbot-ok</p>"],
                capture_output=True, text=True, timeout=60, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{exe} cannot start: {exc}"
    if "meetbot-ok" not in done.stdout:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return f"{exe} cannot render a page (exit {done.returncode}): {tail}"
    return None


def fake_mic_wav(
    path: Path, pcm: PCM16, rate: int, *, lead_s: float, tail_s: float = 60.0
) -> Path:
    """A WAV for Chromium's fake microphone: ``lead_s`` of silence, the clip, ``tail_s`` more.

    Chromium starts playing the file when the page opens the microphone (on Join) and loops
    it, so the lead leaves time for the peer connections to come up and the long tail keeps the
    line from being said again during a test.
    """
    clip = np.asarray(pcm, dtype=np.int16)
    if rate != FAKE_MIC_RATE and len(clip):
        clip = resample(clip, rate, FAKE_MIC_RATE)
    lead = np.zeros(int(lead_s * FAKE_MIC_RATE), np.int16)
    tail = np.zeros(int(tail_s * FAKE_MIC_RATE), np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, np.concatenate((lead, clip, tail)), FAKE_MIC_RATE)
    return path


async def wait_for(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    within_s: float,
    what: str,
    interval: float = 0.1,
) -> None:
    """Poll ``check`` (sync or async) until it is true; fail naming ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class InboundAudio:
    """What one browser's WebRTC stack reports about the audio it receives from one peer."""

    packets: int
    energy: float
    """``totalAudioEnergy``: the sum of level² × seconds (level 1.0 is full scale)."""
    duration_s: float

    def level_since(self, before: InboundAudio) -> float:
        """Average level (dBFS) of what arrived since the ``before`` reading; -120 for none."""
        seconds = self.duration_s - before.duration_s
        energy = self.energy - before.energy
        if seconds <= 0 or energy <= 1e-12:
            return -120.0
        return float(10 * np.log10(energy / seconds))


@dataclass
class Recording:
    """Audio a page recorded from a remote stream, as 16 kHz mono int16 for Whisper."""

    pcm: PCM16
    rate: int = 16_000
    seconds: float = field(init=False)

    def __post_init__(self) -> None:
        self.seconds = len(self.pcm) / self.rate

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, self.pcm, self.rate)
        return path


# The in-page helpers: recorders of remote streams and a log of who was seen speaking.
_PAGE_HELPERS = r"""
(() => {
  if (window.__meetbotTest) return;
  const spoke = new Set();
  const rows = () => document.querySelectorAll("#participants li");
  const watch = () => {
    for (const li of rows()) {
      if (li.classList.contains("speaking")) {
        const who = li.querySelector(".who");
        if (who) spoke.add(who.textContent);
      }
    }
  };
  new MutationObserver(watch).observe(document.getElementById("participants"), {
    subtree: true, childList: true, attributes: true, attributeFilter: ["class"],
  });
  const recorders = new Map();
  window.__meetbotTest = {
    spoke: () => [...spoke],
    peerByName(name) {
      for (const p of window.meetbot.state.peers.values()) if (p.name === name) return p;
      return null;
    },
    startRecording(name) {
      const peer = this.peerByName(name);
      if (!peer || !peer.audio || !peer.audio.srcObject) return false;
      const ctx = new AudioContext();
      const source = ctx.createMediaStreamSource(peer.audio.srcObject);
      const proc = ctx.createScriptProcessor(4096, 1, 1);
      const chunks = [];
      proc.onaudioprocess = (ev) => chunks.push(new Float32Array(ev.inputBuffer.getChannelData(0)));
      source.connect(proc);
      proc.connect(ctx.destination); // a processor only runs when connected; it outputs silence
      recorders.set(name, { ctx, source, proc, chunks });
      return true;
    },
    async stopRecording(name) {
      const rec = recorders.get(name);
      if (!rec) return null;
      recorders.delete(name);
      rec.source.disconnect();
      rec.proc.disconnect();
      const rate = rec.ctx.sampleRate;
      await rec.ctx.close();
      const total = rec.chunks.reduce((n, c) => n + c.length, 0);
      const pcm = new Int16Array(total);
      let at = 0;
      for (const c of rec.chunks) {
        for (let i = 0; i < c.length; i++) pcm[at++] = Math.max(-1, Math.min(1, c[i])) * 32767;
      }
      const bytes = new Uint8Array(pcm.buffer);
      let bin = "";
      for (let i = 0; i < bytes.length; i += 0x8000) {
        bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      return { rate, b64: btoa(bin) };
    },
    async inbound() {
      const out = {};
      for (const p of window.meetbot.state.peers.values()) {
        if (!p.pc) continue;
        const report = await p.pc.getStats();
        const sum = { packets: 0, energy: 0, duration: 0 };
        report.forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "audio") {
            sum.packets += s.packetsReceived || 0;
            sum.energy += s.totalAudioEnergy || 0;
            sum.duration += s.totalSamplesDuration || 0;
          }
        });
        out[p.name] = sum;
      }
      return out;
    },
  };
})();
"""


class BrowserPerson:
    """A person in the room: one headless Chromium with the room page open."""

    def __init__(self, name: str, page: Page, browser: Browser, requests: list[str]) -> None:
        self.name = name
        self.page = page
        self._browser = browser
        self.requests = requests
        """Every URL the page asked for (to prove it needs nothing from the internet)."""
        self.console: list[str] = []
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    @classmethod
    async def launch(
        cls,
        playwright: Playwright,
        name: str,
        mic: Mic,
        viewport: ViewportSize | None = None,
    ) -> BrowserPerson:
        """Start a Chromium whose microphone plays ``mic`` (a WAV), is denied or is missing."""
        exe = chromium_executable()
        assert exe is not None, "no Chromium"
        args = list(CHROMIUM_FLAGS)
        if mic == "denied":
            # No fake-UI flag: the permission prompt is answered "block", as a person might.
            args += ["--use-fake-device-for-media-stream", "--deny-permission-prompts"]
        elif mic == "missing":
            # Permission granted, but this machine has no capture device at all.
            args += ["--use-fake-ui-for-media-stream"]
        else:
            args += [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}",
            ]
        browser = await playwright.chromium.launch(
            executable_path=exe,
            headless=True,
            args=args,
            # Playwright mutes audio by default; a person's browser plays it.
            ignore_default_args=["--mute-audio"],
            timeout=60_000,
        )
        try:
            context = await browser.new_context(viewport=viewport or DESKTOP)
            page = await context.new_page()
        except BaseException:
            await browser.close()
            raise
        requests: list[str] = []
        page.on("request", lambda req: requests.append(req.url))
        page.set_default_timeout(15_000)
        return cls(name, page, browser, requests)

    async def close(self) -> None:
        await self._browser.close()

    # ---- the room page, as a person uses it -------------------------------------------------

    async def open(self, room_url: str) -> None:
        await self.page.goto(room_url, wait_until="load")
        await self.page.evaluate(_PAGE_HELPERS)

    async def join(self, within_s: float = 15.0) -> None:
        """Type the display name, press Join, wait until the page says we are in."""
        await self.page.fill("#name", self.name)
        await self.page.click("#join")
        await self.page.wait_for_function(
            "() => window.meetbot.state.joined", timeout=within_s * 1000
        )

    async def leave(self) -> None:
        await self.page.click("#leave")
        await self.page.wait_for_function("() => !window.meetbot.state.joined")

    async def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = await self.page.evaluate("() => window.meetbot.snapshot()")
        return snap

    async def text(self, selector: str) -> str:
        return str(await self.page.inner_text(selector))

    async def texts(self, selector: str) -> list[str]:
        found: list[str] = await self.page.locator(selector).all_inner_texts()
        return [" ".join(t.split()) for t in found]

    async def wait_connected(self, names: list[str], within_s: float = 20.0) -> None:
        """Wait until the page has a live audio link to each of ``names``."""
        async def linked() -> bool:
            peers = {p["name"]: p for p in (await self.snapshot())["peers"]}
            return all(
                n in peers and peers[n]["connectionState"] == "connected" and peers[n]["hasAudio"]
                for n in names
            )

        await wait_for(linked, within_s, f"{self.name}'s page to connect audio with {names}")

    async def spoke(self) -> list[str]:
        """Names whose participant row was ever shown as speaking."""
        names: list[str] = await self.page.evaluate("() => window.__meetbotTest.spoke()")
        return names

    async def inbound(self) -> dict[str, InboundAudio]:
        raw: dict[str, dict[str, float]] = await self.page.evaluate(
            "() => window.__meetbotTest.inbound()"
        )
        return {
            name: InboundAudio(int(s["packets"]), float(s["energy"]), float(s["duration"]))
            for name, s in raw.items()
        }

    async def start_recording(self, peer_name: str) -> None:
        """Record what this person hears from ``peer_name`` (WebAudio on the remote stream)."""
        ok = await self.page.evaluate(
            "(name) => window.__meetbotTest.startRecording(name)", peer_name
        )
        assert ok, f"{self.name}'s page has no audio from {peer_name} to record"

    async def stop_recording(self, peer_name: str) -> Recording:
        got: dict[str, Any] | None = await self.page.evaluate(
            "(name) => window.__meetbotTest.stopRecording(name)", peer_name
        )
        assert got is not None, f"{self.name} was not recording {peer_name}"
        pcm = np.frombuffer(base64.b64decode(got["b64"]), dtype="<i2").astype(np.int16)
        rate = int(got["rate"])
        return Recording(resample(pcm, rate, 16_000) if rate != 16_000 else pcm)

    async def screenshot(self, path: Path, full_page: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


def loud_seconds(pcm: PCM16, rate: int, dbfs: float = -40.0) -> float:
    """How many seconds of ``pcm`` (in 20 ms frames) are louder than ``dbfs``."""
    frame = rate // 50
    n = len(pcm) // frame
    if n == 0:
        return 0.0
    x = pcm[: n * frame].astype(np.float32).reshape(n, frame) / 32768.0
    rms = np.sqrt(np.mean(x * x, axis=1))
    return float(np.sum(rms > 10 ** (dbfs / 20)) * 0.02)
