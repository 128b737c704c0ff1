"""The OpenAI speech engines through the real ``openai`` SDK against a local fake server.

The fake (tests/support/fake_openai_audio.py) speaks the real HTTP protocol and answers with
the real local engines, so text and audio that come back are genuine.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from meetbot.config import SpeechConfig
from meetbot.events import PCM16, STT_SAMPLE_RATE
from meetbot.speech.audio import resample
from meetbot.speech.base import SpeechError
from meetbot.speech.factory import build_stt, build_tts
from meetbot.speech.local_stt import WhisperSTT
from meetbot.speech.local_tts import PiperTTS
from meetbot.speech.openai_stt import OpenAISTT
from meetbot.speech.openai_tts import OpenAITTS
from tests.support.fake_openai_audio import FakeOpenAIAudio, start_fake_openai

PHRASE = "Hey assistant, can you hear me?"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIAudio]:
    server = await start_fake_openai(deterministic_voice=True)
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def stt(fake: FakeOpenAIAudio) -> AsyncIterator[OpenAISTT]:
    # Generous: the fake answers with real models on a possibly busy 2-core machine.
    engine = OpenAISTT(base_url=fake.base_url, api_key="sk-test", timeout_s=60.0)
    try:
        yield engine
    finally:
        await engine.aclose()


@pytest.fixture
async def tts(fake: FakeOpenAIAudio) -> AsyncIterator[OpenAITTS]:
    engine = OpenAITTS(base_url=fake.base_url, api_key="sk-test", voice="alloy", timeout_s=60.0)
    try:
        yield engine
    finally:
        await engine.aclose()


def _with_silence(pcm: PCM16) -> PCM16:
    """Pads 200 ms of silence around speech, as VAD pre-roll and hangover would."""
    gap = np.zeros(STT_SAMPLE_RATE // 5, dtype=np.int16)
    return np.concatenate([gap, pcm, gap])


async def _utterance() -> PCM16:
    piper = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)  # the same rendering every run
    pcm = np.concatenate([c async for c in piper.synthesize(PHRASE)])
    return _with_silence(resample(pcm, piper.sample_rate, STT_SAMPLE_RATE))


async def test_transcription_comes_back(fake: FakeOpenAIAudio, stt: OpenAISTT) -> None:
    transcript = await stt.transcribe(await _utterance())
    assert {"hey", "assistant", "hear"} <= words(transcript.text), transcript
    request = fake.requests[-1]
    assert request.path == "/v1/audio/transcriptions"
    assert request.authorization == "Bearer sk-test"
    assert request.fields["model"] == "whisper-1"


async def test_transcription_of_a_pinned_answer(fake: FakeOpenAIAudio, stt: OpenAISTT) -> None:
    fake.transcript_text = "  the pinned answer "
    transcript = await stt.transcribe(np.full(1600, 1000, dtype=np.int16))
    assert transcript.text == "the pinned answer"


async def test_speech_streams_24khz_pcm_that_transcribes_back(
    fake: FakeOpenAIAudio, tts: OpenAITTS
) -> None:
    assert tts.sample_rate == 24_000
    chunks = [chunk async for chunk in tts.synthesize(PHRASE)]
    assert len(chunks) > 1  # streamed, and chunks of odd byte counts were reassembled
    assert all(c.dtype == np.int16 and c.ndim == 1 for c in chunks)
    pcm = np.concatenate(chunks)
    assert 1.0 < len(pcm) / 24_000 < 5.0
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 500  # not silence
    heard = await WhisperSTT().transcribe(_with_silence(resample(pcm, 24_000, STT_SAMPLE_RATE)))
    assert {"hey", "assistant", "hear"} <= words(heard.text), heard
    body = fake.requests[-1].fields
    assert body["response_format"] == "pcm" and body["voice"] == "alloy"
    assert body["input"] == PHRASE and body["model"] == "tts-1"


async def test_odd_byte_boundaries_are_reassembled(fake: FakeOpenAIAudio) -> None:
    """Network pieces of 333 bytes split samples; every byte still lands in its sample."""
    fake.chunk_bytes = 333
    engine = OpenAITTS(base_url=fake.base_url, api_key="sk-test", min_chunk_bytes=2)
    try:
        chunks = [chunk async for chunk in engine.synthesize("Okay, next topic.")]
    finally:
        await engine.aclose()
    pcm = np.concatenate(chunks).astype(np.float64)
    assert len(pcm) * 2 == fake.speech_bytes_sent
    # Audio read one byte out of step turns into loud noise: neighbours would not correlate.
    rms = np.sqrt(np.mean(pcm**2))
    assert np.sqrt(np.mean(np.diff(pcm) ** 2)) < 0.5 * rms


async def test_empty_text_makes_no_request(fake: FakeOpenAIAudio, tts: OpenAITTS) -> None:
    assert [c async for c in tts.synthesize("  ")] == []
    assert fake.requests == []


async def test_slow_transcription_times_out(fake: FakeOpenAIAudio) -> None:
    fake.delay_s = 30.0
    engine = OpenAISTT(base_url=fake.base_url, api_key="sk-test", timeout_s=0.3)
    started = time.perf_counter()
    try:
        with pytest.raises(SpeechError, match=r"audio/transcriptions: timed out"):
            await engine.transcribe(np.full(1600, 1000, dtype=np.int16))
    finally:
        await engine.aclose()
    assert time.perf_counter() - started < 5.0  # the 0.3 s timeout, not the 30 s delay


async def test_slow_speech_times_out(fake: FakeOpenAIAudio) -> None:
    fake.delay_s = 30.0
    engine = OpenAITTS(base_url=fake.base_url, api_key="sk-test", timeout_s=0.3)
    started = time.perf_counter()
    try:
        with pytest.raises(SpeechError, match=r"audio/speech: timed out"):
            async for _ in engine.synthesize(PHRASE):
                pass
    finally:
        await engine.aclose()
    assert time.perf_counter() - started < 5.0  # the 0.3 s timeout, not the 30 s delay


async def test_http_500_raises_speech_error(
    fake: FakeOpenAIAudio, stt: OpenAISTT, tts: OpenAITTS
) -> None:
    fake.fail_status = 500
    with pytest.raises(SpeechError, match=r"audio/transcriptions: HTTP 500"):
        await stt.transcribe(np.full(1600, 1000, dtype=np.int16))
    with pytest.raises(SpeechError, match=r"audio/speech: HTTP 500"):
        async for _ in tts.synthesize(PHRASE):
            pass


async def test_unreachable_server_raises_speech_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = OpenAISTT(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2.0)
    try:
        with pytest.raises(SpeechError, match="connection failed"):
            await engine.transcribe(np.full(1600, 1000, dtype=np.int16))
    finally:
        await engine.aclose()


# -- factory ---------------------------------------------------------------------------------


async def test_factory_builds_local_engines_by_default() -> None:
    cfg = SpeechConfig(stt_threads=1)
    assert isinstance(build_stt(cfg), WhisperSTT)
    tts = build_tts(cfg, length_scale=1.2)
    assert isinstance(tts, PiperTTS) and tts.length_scale == 1.2


async def test_factory_builds_openai_engines(fake: FakeOpenAIAudio) -> None:
    cfg = SpeechConfig(
        stt="openai",
        tts="openai",
        openai_base_url=fake.base_url,
        openai_api_key="sk-x",
        tts_voice="nova",
        timeout_s=3.0,
    )
    stt = build_stt(cfg)
    tts = build_tts(cfg, length_scale=1.25)
    assert isinstance(stt, OpenAISTT) and isinstance(tts, OpenAITTS)
    try:
        assert tts.speed == pytest.approx(0.8) and tts.voice == "nova"
        fake.transcript_text = "fine"
        assert (await stt.transcribe(np.full(1600, 1000, dtype=np.int16))).text == "fine"
        assert fake.requests[-1].authorization == "Bearer sk-x"
    finally:
        await stt.aclose()
        await tts.aclose()


def test_factory_rejects_unknown_engines() -> None:
    with pytest.raises(ValueError, match="unknown speech-to-text engine"):
        build_stt(SpeechConfig(stt="vosk"))
    with pytest.raises(ValueError, match="unknown text-to-speech engine"):
        build_tts(SpeechConfig(tts="espeak"))
