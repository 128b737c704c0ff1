"""The ``meetbot`` command line: serve rooms, join them, simulate participants, run the demo.

This is the one place that reads flags and the environment and turns them into ``BotConfig``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from meetbot.config import BotConfig, BrainConfig, RealtimeConfig, SpeechConfig, VadConfig

log = logging.getLogger("meetbot")


def build_config(args: argparse.Namespace, env: dict[str, str] | None = None) -> BotConfig:
    """Flags win over the environment; the environment wins over defaults."""
    env = dict(os.environ) if env is None else env
    base_url = getattr(args, "openai_base_url", None) or env.get("MEETBOT_OPENAI_BASE_URL")
    api_key = env.get("MEETBOT_OPENAI_API_KEY") or env.get("OPENAI_API_KEY")
    return BotConfig(
        name=args.name,
        persona=args.persona,
        vad=VadConfig(
            aggressiveness=args.vad_aggressiveness,
            start_ms=args.vad_start_ms,
            end_ms=args.vad_end_ms,
            pause_ms=args.vad_pause_ms,
            early_end=not args.no_early_end,
        ),
        speech=SpeechConfig(
            stt=args.stt,
            tts=args.tts,
            openai_base_url=base_url,
            openai_api_key=api_key,
        ),
        brain=BrainConfig(
            kind=args.brain,
            base_url=env.get("MEETBOT_LLM_BASE_URL") or base_url,
            api_key=env.get("MEETBOT_LLM_API_KEY") or api_key,
            model=env.get("MEETBOT_LLM_MODEL", BrainConfig.model),
        ),
        data_dir=Path(args.data_dir),
        latency_log=Path(args.latency_log) if args.latency_log else None,
        pipeline=getattr(args, "pipeline", "cascade"),
        realtime=_realtime_config(args, env, api_key),
    )


def _realtime_config(args: argparse.Namespace, env: dict[str, str],
                     api_key: str | None) -> RealtimeConfig:
    """Speech-to-speech settings: flags, then MEETBOT_REALTIME_URL/KEY/MODEL, then defaults."""
    return RealtimeConfig(
        websocket_url=getattr(args, "realtime_url", None) or env.get("MEETBOT_REALTIME_URL"),
        api_key=env.get("MEETBOT_REALTIME_KEY") or api_key,
        model=getattr(args, "realtime_model", None) or env.get(
            "MEETBOT_REALTIME_MODEL", RealtimeConfig.model),
        voice=getattr(args, "realtime_voice", None) or RealtimeConfig.voice,
        turn_detection=getattr(args, "realtime_turn_detection", RealtimeConfig.turn_detection),
        instructions=getattr(args, "realtime_instructions", None),
        fallback=not getattr(args, "no_realtime_fallback", False),
    )


def _add_bot_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="assistant", help="the bot's display name")
    p.add_argument("--persona", choices=("assistant", "echo"), default="assistant",
                   help="assistant: the meeting assistant; echo: replay every utterance")
    p.add_argument("--stt", choices=("local", "openai"), default="local")
    p.add_argument("--tts", choices=("local", "openai"), default="local")
    p.add_argument("--brain", choices=("rules", "llm"), default="rules")
    p.add_argument("--openai-base-url", default=None,
                   help="any OpenAI-compatible endpoint (or MEETBOT_OPENAI_BASE_URL)")
    p.add_argument("--vad-aggressiveness", type=int, default=VadConfig.aggressiveness)
    p.add_argument("--vad-start-ms", type=int, default=VadConfig.start_ms)
    p.add_argument("--vad-end-ms", type=int, default=VadConfig.end_ms,
                   help="silence that ends a turn (default %(default)s)")
    p.add_argument("--vad-pause-ms", type=int, default=VadConfig.pause_ms,
                   help="silence at which transcription starts early (default %(default)s)")
    p.add_argument("--no-early-end", action="store_true",
                   help="always wait the whole --vad-end-ms, even after a finished sentence")
    p.add_argument("--data-dir", default="meetings", help="where meeting notes are kept")
    p.add_argument("--latency-log", default=None, help="write per-turn latency JSON lines here")
    p.add_argument("--pipeline", choices=("cascade", "speech-to-speech"), default="cascade",
                   help="cascade: STT, brain, TTS; speech-to-speech: an OpenAI Realtime session "
                   "(docs/realtime.md)")
    p.add_argument("--realtime-url", default=None,
                   help="Realtime WebSocket, e.g. wss://api.openai.com/v1/realtime "
                   "(or MEETBOT_REALTIME_URL; default: /v1/realtime on the room's server)")
    p.add_argument("--realtime-model", default=None,
                   help="Realtime model (or MEETBOT_REALTIME_MODEL; default "
                   f"{RealtimeConfig.model})")
    p.add_argument("--realtime-voice", default=None, help="the model's voice (default alloy)")
    p.add_argument("--realtime-turn-detection", default=RealtimeConfig.turn_detection,
                   choices=("none", "server_vad", "semantic_vad"),
                   help="none: the bot's own VAD commits each utterance (default)")
    p.add_argument("--realtime-instructions", default=None,
                   help="instructions for the model (default: meetbot's meeting assistant)")
    p.add_argument("--no-realtime-fallback", action="store_true",
                   help="do not fall back to the cascade when the Realtime session is gone")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meetbot",
        description="A meeting bot that joins calls as a WebRTC participant, hears every "
        "speaker separately and keeps the meeting on track.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run a room server with its browser page")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--max-room-size", type=int, default=16)

    join = sub.add_parser("join", help="join a room by URL as a bot")
    join.add_argument("url", help="room URL, e.g. http://127.0.0.1:8080/r/standup")
    _add_bot_flags(join)

    sim = sub.add_parser("simulate", help="simulated participants: play a scenario or a WAV")
    sim.add_argument("url", help="room URL")
    sim.add_argument("--script", help="a scenario file (see docs/scenarios.md)")
    sim.add_argument("--name", default="guest", help="participant name (with --wav)")
    sim.add_argument("--wav", help="a WAV file to say once (instead of --script)")
    sim.add_argument("--listen-s", type=float, default=5.0,
                     help="with --wav: how long to keep listening afterwards")
    sim.add_argument("--out", default="artifacts/simulate", help="recordings and report.json")
    sim.add_argument("--grace-s", type=float, default=5.0,
                     help="how long to wait for a reply to begin")

    demo = sub.add_parser("demo", help="room server + bot + the seed scenario, all offline")
    demo.add_argument("--script", default=None, help="scenario (default: the seed meeting)")
    demo.add_argument("--port", type=int, default=0, help="room server port (0: any free)")
    demo.add_argument("--out", default="artifacts/demo")
    demo.add_argument("--grace-s", type=float, default=5.0)
    _add_bot_flags(demo)

    try:
        from meetbot.meeting.cli_notes import add_notes_parser
    except ImportError:  # notes module not present in a partial install
        pass
    else:
        add_notes_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
    )
    if not args.verbose:
        for noisy in ("aioice", "aiortc", "aiohttp.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "notes":
        from meetbot.meeting.cli_notes import run_notes

        return run_notes(args)
    commands = {"serve": _serve, "join": _join, "simulate": _simulate, "demo": _demo}
    try:
        return _run(commands[args.command](args))
    except KeyboardInterrupt:
        return 130


def _run(main_coro: Coroutine[Any, Any, int]) -> int:
    """Run until done or until SIGINT/SIGTERM, then shut down cleanly."""

    async def guarded() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        try:
            return await main_coro
        except asyncio.CancelledError:
            return 0

    return asyncio.run(guarded())


async def _serve(args: argparse.Namespace) -> int:
    from signaling.server import start_server

    server = await start_server(args.host, args.port, max_room_size=args.max_room_size)
    print(f"meetbot room server on {server.url} — open {server.room_url('demo')} to join a room",
          flush=True)
    ws_base = server.url.replace("http://", "ws://", 1)
    print(f"OpenAI Realtime endpoint (offline): {ws_base}/v1/realtime", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
    return 0


async def _join(args: argparse.Namespace) -> int:
    from meetbot.session import create_bot
    from meetbot.transport.signaling_client import SignalingError

    config = build_config(args)
    try:
        bot = await create_bot(args.url, config)
        await bot.start()
    except SignalingError as exc:
        print(f"meetbot: {exc}", file=sys.stderr)
        return 2
    # Everything made at start-up (libraries, models, the session) lives as long as the
    # process: keep it out of garbage collection, so that a full collection does not pause
    # the event loop scanning it again and again during the meeting.
    gc.collect()
    gc.freeze()
    print(f"{config.name} is in {args.url} (Ctrl-C to leave)", flush=True)
    try:
        await bot.wait_closed()
    finally:
        await bot.stop()
    return 0


async def _simulate(args: argparse.Namespace) -> int:
    from meetbot.scenario import ScenarioError, load_scenario

    if bool(args.script) == bool(args.wav):
        print("meetbot simulate: give either --script FILE or --wav FILE", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.wav:
        return await _simulate_wav(args.url, args.name, Path(args.wav), args.listen_s, out)
    try:
        scenario = load_scenario(args.script)
    except ScenarioError as exc:
        print(f"meetbot simulate: {exc}", file=sys.stderr)
        return 2
    report = await _play(scenario, args.url, out, args.grace_s)
    return 0 if report.passed else 1


async def _simulate_wav(url: str, name: str, wav: Path, listen_s: float, out: Path) -> int:
    from meetbot.simulate import SimulatedParticipant
    from meetbot.speech.audio import read_wav

    pcm, rate = read_wav(wav)
    person = SimulatedParticipant(url, name)
    await person.join()
    try:
        await asyncio.sleep(1.0)
        clip = await person.speak(pcm, rate)
        await asyncio.sleep(listen_s)
        report: dict[str, Any] = {
            "name": name, "room_url": url, "wav": str(wav),
            "speech_start": clip.speech_start, "speech_end": clip.speech_end, "heard": {},
        }
        for rec in person.recorders.values():
            report["heard"][rec.peer.name] = {
                "first_audio": rec.first_sound_after(clip.speech_end),
                "last_audio": rec.last_sound(),
            }
        await asyncio.to_thread(_save_simulation, out, person, report)
        print(json.dumps(report, indent=2))
    finally:
        await person.leave()
    return 0


def _save_simulation(out: Path, person: Any, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for rec in person.recorders.values():
        rec.save(out / f"{person.name}-hears-{rec.peer.name}.wav")
    (out / "report.json").write_text(json.dumps(report, indent=2))


async def _play(scenario: Any, url: str, out: Path, grace_s: float) -> Any:
    from meetbot.runner import ScenarioRunner
    from meetbot.session import scenario_ears, scenario_voices

    runner = ScenarioRunner(
        scenario, url, render=scenario_voices(), stt=scenario_ears(), grace_s=grace_s,
        out_dir=out, on_line=lambda line: print(line, flush=True),
    )
    report = await runner.run()
    verdict = "PASSED" if report.passed else "FAILED"
    lat = report.latencies_ms
    summary = f"{scenario.name}: {verdict}"
    if lat:
        summary += f" — voice-to-voice median {sorted(lat)[len(lat) // 2]:.0f} ms over {len(lat)}"
    print(summary, f"(report: {out / 'report.json'})", flush=True)
    return report


async def _demo(args: argparse.Namespace) -> int:
    from meetbot.scenario import load_scenario
    from meetbot.session import create_bot, default_scenario_path
    from signaling.server import start_server

    scenario = load_scenario(args.script or default_scenario_path())
    server = await start_server("127.0.0.1", args.port)
    room = f"demo-{os.getpid()}"
    url = server.room_url(room)
    print(f"room server on {server.url}; watch the meeting at {url}", flush=True)
    config = build_config(args)
    config.name = scenario.bot_name
    bot = await create_bot(url, config)
    try:
        await bot.start()
        report = await _play(scenario, url, Path(args.out), args.grace_s)
        if report.notes:
            from meetbot.session import notes_markdown

            print("\n" + notes_markdown(report.notes), flush=True)
    finally:
        await bot.stop()
        await server.close()
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
