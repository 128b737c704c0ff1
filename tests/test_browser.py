"""A person in a real browser: the room page end to end in headless Chromium.

Each browser is Debian's Chromium driven by Playwright, a real WebRTC peer that nobody here
wrote. Its microphone is Chromium's fake capture device playing a WAV of a scenario line (or it
is denied); what a test checks is what a person at that browser would notice: what they hear
(recorded from the remote stream inside the page and transcribed, or WebRTC's own audio energy
figures), and what the page shows (read from the DOM). Screenshots and recordings are saved
under ``artifacts/browser/``.

``MEETBOT_UPDATE_SCREENSHOT=1`` makes the seed-meeting test also write ``docs/screenshot.png``
(the README's picture of the product).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from meetbot.bot import BotSession
from meetbot.config import BotConfig
from meetbot.conversation import Conversation
from meetbot.events import PCM16, Utterance
from meetbot.runner import mentions
from meetbot.scenario import Scenario, Step, Voice, load_scenario
from meetbot.session import create_bot, default_scenario_path, scenario_ears, scenario_voices
from meetbot.simulate import SimulatedParticipant
from signaling.server import RunningServer
from tests.browser_support import (
    ARTIFACTS,
    PHONE,
    REQUIRE_ENV,
    ROOT,
    BrowserPerson,
    Mic,
    chromium_problem,
    fake_mic_wav,
    loud_seconds,
    wait_for,
)

if TYPE_CHECKING:
    from playwright.async_api import Playwright

pytestmark = [pytest.mark.slow, pytest.mark.flaky(reruns=1)]

BOT = "assistant"
LEAD_S = 6.0
"""Silence before a browser's line: time to join and bring up every peer connection."""
HEARD_DBFS = -40.0
"""Speech (and the bot's voice) arrives far above this; Opus silence far below."""


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_ready() -> None:
    """Skip (loudly) only when Chromium cannot start here at all; CI makes that a failure."""
    problem = chromium_problem()
    if problem is None:
        return
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"browser tests required ({REQUIRE_ENV} is set) but {problem}")
    message = f"BROWSER TESTS SKIPPED — Chromium cannot start: {problem}"
    warnings.warn(message, pytest.PytestWarning, stacklevel=1)
    pytest.skip(message)


@pytest.fixture
async def playwright(chromium_ready: None) -> AsyncIterator[Playwright]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        yield pw


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    out = ARTIFACTS / str(request.node.name)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return out


@pytest.fixture(scope="module")
def seed() -> Scenario:
    return load_scenario(default_scenario_path())


# ---- helpers ---------------------------------------------------------------------------------


def _line(scenario: Scenario, index: int) -> Step:
    step = scenario.steps[index]
    assert step.kind == "speak" and step.say, step
    return step


async def _render(scenario: Scenario, step: Step) -> tuple[PCM16, int]:
    voices = {p.name: p.voice for p in scenario.participants}
    pcm, rate = await scenario_voices()(voices.get(step.speaker, Voice("piper")), step.say)
    return pcm, rate


async def _assistant(server: RunningServer, room: str, tmp_path: Path) -> BotSession:
    """The offline assistant (Whisper, Piper, rule brain), models loaded, not yet joined."""
    return await create_bot(
        server.room_url(room), BotConfig(name=BOT, data_dir=tmp_path / "meetings")
    )


async def _launch(playwright: Playwright, *people: tuple[str, Mic]) -> list[BrowserPerson]:
    started = await asyncio.gather(
        *(BrowserPerson.launch(playwright, name, mic) for name, mic in people),
        return_exceptions=True,
    )
    ok = [p for p in started if isinstance(p, BrowserPerson)]
    failed = [p for p in started if isinstance(p, BaseException)]
    if failed:
        for p in ok:
            await p.close()
        raise failed[0]
    return ok


async def _close(people: list[BrowserPerson], artifacts: Path) -> None:
    for person in people:
        (artifacts / f"{person.name}-console.log").write_text("\n".join(person.console))
        await person.close()


async def _caption_from(
    person: BrowserPerson, speaker: str, within_s: float, containing: tuple[str, ...] = ()
) -> str:
    """Wait for a final caption line by ``speaker`` on the page (mentioning any of
    ``containing``, when given); return its text."""
    found: list[str] = []

    async def shown() -> bool:
        lines = await person.texts("#captions li:not(.partial)")
        found[:] = [t.split(": ", 1)[1] for t in lines if t.startswith(f"{speaker}: ")
                    and (not containing or any(mentions(t, w) for w in containing))]
        return bool(found)

    what = f"a caption by {speaker}" + (f" mentioning {containing}" if containing else "")
    await wait_for(shown, within_s, f"{what} on {person.name}'s page")
    return found[-1]


async def _quiet(person: BrowserPerson, peer: str, within_s: float = 30.0) -> None:
    """Wait until the page no longer shows ``peer`` as speaking."""
    async def done() -> bool:
        peers = {p["name"]: p for p in (await person.snapshot())["peers"]}
        return peer in peers and not peers[peer]["speaking"]

    await wait_for(done, within_s, f"{peer} to stop speaking on {person.name}'s page")


def _only_local_requests(person: BrowserPerson, server: RunningServer) -> None:
    foreign = [u for u in person.requests
               if not u.startswith((server.url, "data:", "blob:"))]
    assert person.requests and not foreign, f"the page fetched from elsewhere: {foreign}"


# ---- 1. one person talks with the bot ----------------------------------------------------------


async def test_a_person_in_chromium_talks_with_the_bot_and_hears_the_reply(
    room_server: RunningServer, playwright: Playwright, seed: Scenario, tmp_path: Path,
    artifacts: Path,
) -> None:
    first = _line(seed, 0)  # Dana: "Hey assistant, can you help us stay on track today?"
    pcm, rate = await _render(seed, first)
    mic = fake_mic_wav(tmp_path / "dana.wav", pcm, rate, lead_s=LEAD_S)
    room = "browser-one"
    bot = await _assistant(room_server, room, tmp_path)
    heard: list[Utterance] = []
    bot.on("utterance", heard.append)
    await bot.start()
    people = await _launch(playwright, (first.speaker, mic))
    dana = people[0]
    try:
        await dana.open(room_server.room_url(room))
        await dana.join()
        assert await dana.text("#mic-status") == "Microphone on."
        await dana.wait_connected([BOT])
        await dana.start_recording(BOT)
        rows = await dana.texts("#participants li")
        assert any(r.startswith(f"{first.speaker} ") and "you" in r.lower() for r in rows), rows
        assert any(r.startswith(f"{BOT} ") and "bot" in r.lower() for r in rows), rows

        # Dana's line plays after the lead; the bot answers; the page captions both.
        # (Waiting for the words, not just any caption: a slow machine may split a line.)
        expected = first.expect.mentions_any
        said = await _caption_from(dana, first.speaker, LEAD_S + 25, containing=("track",))
        reply_caption = await _caption_from(dana, BOT, 60, containing=expected)
        await _quiet(dana, BOT)
        await asyncio.sleep(0.5)
        recording = await dana.stop_recording(BOT)
        recording.save(artifacts / "dana-hears-assistant.wav")
        await dana.screenshot(artifacts / "room.png")

        assert {u.participant_name for u in heard} == {first.speaker}, heard
        assert loud_seconds(recording.pcm, recording.rate, HEARD_DBFS) > 2.0, (
            "Dana's page received (almost) no sound from the bot"
        )
        # What Dana actually heard, transcribed, says what the seed meeting expects.
        text = (await scenario_ears().transcribe(recording.pcm)).text
        assert any(mentions(text, w) for w in expected), (
            f"heard {text!r}, wanted {expected}; Dana said {said!r}, the bot {reply_caption!r}"
        )
        # Who was speaking was shown: Dana herself (her microphone) and then the bot.
        assert {first.speaker, BOT} <= set(await dana.spoke())
        _only_local_requests(dana, room_server)
    finally:
        await _close(people, artifacts)
        await bot.stop()


# ---- 2. two people and the bot: everyone hears everyone, speech is attributed -----------------


async def test_two_browsers_and_the_bot_hear_each_other_with_names_kept_apart(
    room_server: RunningServer, playwright: Playwright, seed: Scenario, tmp_path: Path,
    artifacts: Path,
) -> None:
    # Lee speaks first without addressing the bot; then Dana asks the bot for help.
    lee_line, dana_line = _line(seed, 1), _line(seed, 0)
    lee_pcm, lee_rate = await _render(seed, lee_line)
    dana_pcm, dana_rate = await _render(seed, dana_line)
    lee_mic = fake_mic_wav(tmp_path / "lee.wav", lee_pcm, lee_rate, lead_s=LEAD_S)
    dana_lead = LEAD_S + len(lee_pcm) / lee_rate + 3.0
    dana_mic = fake_mic_wav(tmp_path / "dana.wav", dana_pcm, dana_rate, lead_s=dana_lead)
    room = "browser-two"
    bot = await _assistant(room_server, room, tmp_path)
    heard: list[Utterance] = []
    bot.on("utterance", heard.append)
    people = await _launch(playwright, ("Lee", lee_mic), ("Dana", dana_mic))
    lee, dana = people
    try:
        for person in people:
            await person.open(room_server.room_url(room))
        # The browsers meet first (Dana offers to Lee); the bot joins last and offers to both.
        await lee.join()
        await dana.join()
        await bot.start()
        await lee.wait_connected(["Dana", BOT])
        await dana.wait_connected(["Lee", BOT])
        before = {p.name: await p.inbound() for p in people}

        await _caption_from(dana, BOT, dana_lead + 60)
        await _quiet(lee, BOT)
        await asyncio.sleep(0.5)
        after = {p.name: await p.inbound() for p in people}
        await dana.screenshot(artifacts / "dana.png")
        await lee.screenshot(artifacts / "lee.png")

        # Each browser heard the other person and the bot (WebRTC's own energy figures).
        levels = {
            f"{who} hears {peer}": after[who][peer].level_since(before[who][peer])
            for who, peer in (("Lee", "Dana"), ("Lee", BOT), ("Dana", "Lee"), ("Dana", BOT))
        }
        (artifacts / "inbound-dbfs.json").write_text(json.dumps(levels, indent=2))
        quiet = {k: round(v, 1) for k, v in levels.items() if v < HEARD_DBFS}
        assert not quiet, f"silent inbound audio (dBFS): {quiet}; all: {levels}"

        # The bot kept the two voices apart and named them right.
        names = [u.participant_name for u in heard]
        assert list(dict.fromkeys(names)) == ["Lee", "Dana"], names
        lines = [(t.speaker, t.text) for t in bot.notes_store.notes.transcript]
        assert any(s == "Lee" and mentions(t, "budget") for s, t in lines), lines
        assert any(s == "Dana" and mentions(t, "track") for s, t in lines), lines
        # ...and both people see it that way in their captions.
        for person in people:
            await _caption_from(person, "Lee", 5, containing=("budget",))
            await _caption_from(person, "Dana", 5, containing=("track",))
            assert {"Lee", "Dana", BOT} <= set(await person.spoke()), person.name
    finally:
        await _close(people, artifacts)
        await bot.stop()


# ---- 3. the live notes panel during the seed meeting -------------------------------------------


class _BotEars:
    """What the bot has heard (utterances per person) against what it has transcribed and
    said (its transcript): tells a patient participant when the bot is done with a turn."""

    def __init__(self, bot: BotSession) -> None:
        self._bot = bot
        self._heard: Counter[str] = Counter()
        self._last_heard = 0.0
        bot.on("utterance", self._on_utterance)

    def _on_utterance(self, utterance: Utterance) -> None:
        self._heard[utterance.participant_name] += 1
        self._last_heard = time.monotonic()

    def lines_by(self, speaker: str) -> int:
        return sum(1 for t in self._bot.notes_store.notes.transcript if t.speaker == speaker)

    def idle(self) -> bool:
        """Not speaking, and every utterance heard is transcribed (a silent one, which leaves
        no line, is given up on after a while)."""
        persona = self._bot.persona
        if isinstance(persona, Conversation) and persona.speaking:
            return False
        behind = any(n > self.lines_by(name) for name, n in self._heard.items())
        return not behind or time.monotonic() - self._last_heard > 20.0

    async def wait_idle(self, stable_s: float = 2.0, within_s: float = 90.0) -> None:
        """Wait until the bot has been idle for ``stable_s`` (a line cut in two by a pause
        gets its second part heard and answered before the next person speaks)."""
        since: list[float] = []

        def calm() -> bool:
            if not self.idle():
                since.clear()
                return False
            if not since:
                since.append(time.monotonic())
            return time.monotonic() - since[0] >= stable_s

        await wait_for(calm, within_s, "the bot to finish the turn")


async def _hold_meeting(
    seed: Scenario, people: dict[str, SimulatedParticipant], ears: _BotEars,
    audio: dict[int, tuple[PCM16, int]],
) -> None:
    """Play the seed meeting turn by turn, as patient people would: each speaker waits until
    the bot has heard the line before them and, where the script expects one, answered it.

    Turn-taking follows the bot's own transcript rather than fixed pauses, so a slow machine
    makes the meeting longer, not different.
    """
    said_by_bot = ears.lines_by(BOT)  # the bot's lines up to the last person's turn
    for step in seed.steps:
        if step.kind == "pause":
            await asyncio.sleep(step.pause_s)
            continue
        if step.kind == "wait_for_bot":
            await wait_for(lambda n=said_by_bot: ears.lines_by(BOT) > n, step.timeout_s,
                           f"the bot to speak up by itself (step {step.index})")
            await ears.wait_idle()
            said_by_bot = ears.lines_by(BOT)
            continue
        mine, replies = ears.lines_by(step.speaker), ears.lines_by(BOT)
        await people[step.speaker].speak(*audio[step.index])
        await wait_for(lambda m=mine, who=step.speaker: ears.lines_by(who) > m,
                       60, f"the bot to hear {step.speaker}: {step.say!r}")
        if step.expect.reply:
            await wait_for(lambda r=replies: ears.lines_by(BOT) > r, 60,
                           f"the bot's answer to {step.speaker}: {step.say!r}")
        said_by_bot = ears.lines_by(BOT)
        await ears.wait_idle()


async def test_the_notes_panel_follows_the_seed_meeting(
    room_server: RunningServer, playwright: Playwright, seed: Scenario, tmp_path: Path,
    artifacts: Path,
) -> None:
    """Dana and Lee (simulated participants) hold the seed meeting; Ann watches in Chromium."""
    room = "seed"
    url = room_server.room_url(room)
    render = scenario_voices()
    voices = {p.name: p.voice for p in seed.participants}
    audio = {s.index: await render(voices[s.speaker], s.say)
             for s in seed.steps if s.kind == "speak"}
    bot = await _assistant(room_server, room, tmp_path)
    ears = _BotEars(bot)
    await bot.start()
    quiet_mic = fake_mic_wav(tmp_path / "ann.wav", np.zeros(0, np.int16), 48_000, lead_s=1.0)
    browsers = await _launch(playwright, ("Ann", quiet_mic))
    ann = browsers[0]
    people = {p.name: SimulatedParticipant(url, p.name) for p in seed.participants}
    active_seen: set[str] = set()  # what the agenda showed as the current item, over time

    async def watch_agenda() -> None:
        while True:
            active_seen.update(await ann.texts("#agenda li.active"))
            await asyncio.sleep(0.5)

    watcher: asyncio.Task[None] | None = None
    try:
        await ann.open(url)
        await ann.join()
        for person in people.values():
            await person.join()
            await person.wait_for_peer(BOT, 15)
        await ann.wait_connected([BOT, *people])
        watcher = asyncio.get_running_loop().create_task(watch_agenda())
        await _hold_meeting(seed, people, ears, audio)
        # The picture: everyone still in the room, the bot has just read out the action items.
        await _caption_from(ann, BOT, 60, containing=("announcement",))
        shot = await ann.screenshot(artifacts / "seed-meeting.png")
        said = [f"{t.speaker}: {t.text}" for t in bot.notes_store.notes.transcript]

        # The notes panel, as Ann reads it: the seed scenario's agenda and action item.
        agenda = await ann.page.eval_on_selector_all(
            "#agenda li", "els => els.map(e => ({text: e.innerText, cls: e.className}))"
        )
        budget = [a for a in agenda if mentions(a["text"], "budget")]
        launch = [a for a in agenda if mentions(a["text"], "launch")]
        assert budget and "done" in budget[0]["cls"], (agenda, said)
        assert launch and "active" in launch[0]["cls"], (agenda, said)
        # While the budget was discussed its timebox counted down on the page.
        countdown = sorted(t for t in active_seen if mentions(t, "budget") and t.endswith(" left"))
        assert len(countdown) >= 3, f"the active budget item never counted down: {active_seen}"
        assert re.fullmatch(r".*budget.*\d+:\d\d left", countdown[0], re.I), countdown
        actions = await ann.texts("#actions li")
        assert any(a.startswith("Lee:") and mentions(a, "announcement") and "due" in a
                   and mentions(a, "Friday") for a in actions), (actions, said)
        decisions = await ann.texts("#decisions li")
        assert any(mentions(d, "events") for d in decisions), (decisions, said)

        # The downloaded notes.md says the same.
        async with ann.page.expect_download() as download_info:
            await ann.page.click("#download-notes")
        download = await download_info.value
        saved = artifacts / download.suggested_filename
        await download.save_as(saved)
        markdown = saved.read_text(encoding="utf-8")
        assert saved.suffix == ".md" and "## Action items" in markdown, markdown
        assert "**Lee**" in markdown and mentions(markdown, "announcement"), markdown

        # On a phone-sized screen the page still fits: nothing scrolls sideways.
        await ann.page.set_viewport_size(PHONE)
        await ann.screenshot(artifacts / "seed-meeting-phone.png")
        overflow = await ann.page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"the page is {overflow}px wider than a phone"
        _only_local_requests(ann, room_server)
        if os.environ.get("MEETBOT_UPDATE_SCREENSHOT"):
            shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")
    finally:
        lines = [f"{t.speaker}: {t.text}" for t in bot.notes_store.notes.transcript]
        (artifacts / "transcript.txt").write_text("\n".join(lines))
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        for person in people.values():
            await person.leave()
        await _close(browsers, artifacts)
        await bot.stop()


# ---- 4. without a microphone -------------------------------------------------------------------


async def test_a_denied_microphone_is_explained_and_the_person_still_listens(
    room_server: RunningServer, playwright: Playwright, tmp_path: Path, artifacts: Path,
) -> None:
    room = "browser-denied"
    bot = await _assistant(room_server, room, tmp_path)
    await bot.start()
    people = await _launch(playwright, ("Ann", "denied"))
    ann = people[0]
    try:
        await ann.open(room_server.room_url(room))
        await ann.join()
        status = await ann.text("#mic-status")
        assert "blocked" in status.lower() and "still listen" in status.lower(), status
        assert "warn" in (await ann.page.get_attribute("#mic-status", "class") or "")
        rows = await ann.texts("#participants li")
        assert any(r.startswith("Ann ") and "listening only" in r for r in rows), rows
        await ann.wait_connected([BOT])

        async def hears(sentence: str, keyword: str, name: str) -> None:
            await ann.start_recording(BOT)
            # While the bot is silent the page measures silence: the level check means sound.
            silent_from = (await ann.inbound())[BOT]
            await asyncio.sleep(1.0)
            before = (await ann.inbound())[BOT]
            silence = before.level_since(silent_from)
            assert silence < HEARD_DBFS - 20, f"the silent bot measured {silence:.1f} dBFS"
            assert isinstance(bot.persona, Conversation)
            await bot.persona.say(sentence)
            await _caption_from(ann, BOT, 30, containing=(keyword,))
            await _quiet(ann, BOT)
            await asyncio.sleep(0.5)
            level = (await ann.inbound())[BOT].level_since(before)
            recording = await ann.stop_recording(BOT)
            recording.save(artifacts / f"{name}.wav")
            assert level > HEARD_DBFS, f"Ann heard the bot at {level:.1f} dBFS"
            text = (await scenario_ears().transcribe(recording.pcm)).text
            assert mentions(text, keyword), f"Ann heard {text!r}, wanted {keyword!r}"

        await hears("Welcome Ann. You are listening, and I am keeping the notes.", "notes",
                    "first")
        await ann.screenshot(artifacts / "denied.png")

        # Leave, and the room page says who is still there; rejoin, and it all works again.
        await ann.leave()
        await wait_for(lambda: not bot.people, 10, "the bot to see Ann leave")
        await wait_for(
            lambda: _has_text(ann, "#room-summary", BOT), 10, "the room summary after leaving"
        )
        await ann.join()
        await ann.wait_connected([BOT])
        assert "blocked" in (await ann.text("#mic-status")).lower()
        await hears("Welcome back Ann, good to hear you again.", "again", "after-rejoin")
    finally:
        await _close(people, artifacts)
        await bot.stop()


async def _has_text(person: BrowserPerson, selector: str, text: str) -> bool:
    return text in await person.text(selector)


async def test_a_missing_microphone_is_explained(
    room_server: RunningServer, playwright: Playwright, artifacts: Path,
) -> None:
    """A computer with no microphone at all: the page says so and joins to listen."""
    people = await _launch(playwright, ("Kim", "missing"))
    kim = people[0]
    try:
        await kim.open(room_server.room_url("browser-no-mic"))
        await kim.join()
        status = await kim.text("#mic-status")
        assert "no microphone" in status.lower() and "still listen" in status.lower(), status
        assert (await kim.snapshot())["joined"]
    finally:
        await _close(people, artifacts)
