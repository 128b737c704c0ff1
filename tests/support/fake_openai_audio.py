"""A local stand-in for the OpenAI audio API, speaking its real HTTP wire protocol.

The remote engines are tested through the real ``openai`` SDK against this server, so the
multipart upload, the JSON answers, the streamed PCM body and the error envelopes are the
ones the SDK really sends and parses. Answers are real too: transcriptions come from the
local Whisper engine and speech from the local Piper voice resampled to the API's 24 kHz,
unless a test pins the text. Switches make endpoints slow or failing, to test timeouts and
error handling.

    fake = await start_fake_openai()
    stt = OpenAISTT(base_url=fake.base_url, api_key="test")
    ...
    await fake.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from meetbot.events import STT_SAMPLE_RATE
from meetbot.speech.audio import StreamResampler, decode_wav, resample
from meetbot.speech.base import SpeechToText

log = logging.getLogger(__name__)

OPENAI_PCM_RATE = 24_000
_INVALID = "invalid_request_error"
_INTERNAL = "server_error"


@dataclass
class RecordedRequest:
    """What one request to the fake carried, for assertions."""

    path: str
    authorization: str | None
    fields: dict[str, Any]


@dataclass
class FakeOpenAIAudio:
    """A running fake; switch attributes may be changed between (or during) requests.

    Attributes:
        transcript_text: fixed transcription answer; None transcribes the upload for real.
        delay_s: wait this long before answering (interrupted by ``close()``).
        fail_status: answer every request with this HTTP status and an OpenAI error body.
        chunk_bytes: size of the body writes of a speech stream; odd by default so samples
            straddle chunk boundaries as they can on a real network.
        deterministic_voice: synthesize without Piper's randomness, so tests that check the
            words of a round trip give the same answer every run.
    """

    base_url: str
    transcript_text: str | None = None
    delay_s: float = 0.0
    fail_status: int | None = None
    chunk_bytes: int = 4801
    deterministic_voice: bool = False
    stt: SpeechToText | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    speech_bytes_sent: int = 0
    """Body bytes written by all speech responses so far."""
    _runner: web.AppRunner | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        """Stops the server; pending delays end at once."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAIAudio:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- request handling -------------------------------------------------------------------

    async def _pause(self) -> None:
        if self.delay_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.delay_s)

    def _failure(self) -> web.Response | None:
        if self.fail_status is None:
            return None
        return _error(self.fail_status, "the fake server was told to fail", _INTERNAL)

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        upload = form.get("file")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        self.requests.append(
            RecordedRequest(request.path, request.headers.get("Authorization"), fields)
        )
        await self._pause()
        if (failure := self._failure()) is not None:
            return failure
        if not isinstance(upload, web.FileField):
            return _error(400, "'file' is a required multipart file field", _INVALID)
        if not fields.get("model"):
            return _error(400, "'model' is required", _INVALID)
        try:
            pcm, rate = decode_wav(upload.file.read())
        except ValueError as exc:
            return _error(400, f"could not decode audio: {exc}", _INVALID)
        if self.transcript_text is not None:
            text = self.transcript_text
        else:
            if self.stt is None:
                from meetbot.speech.local_stt import WhisperSTT

                self.stt = WhisperSTT()
            text = (await self.stt.transcribe(resample(pcm, rate, STT_SAMPLE_RATE))).text
        if fields.get("response_format") == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        return web.json_response({"text": text, "usage": {"type": "duration", "seconds": 1}})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
        self.requests.append(
            RecordedRequest(
                request.path,
                request.headers.get("Authorization"),
                body if isinstance(body, dict) else {},
            )
        )
        await self._pause()
        if (failure := self._failure()) is not None:
            return failure
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object", _INVALID)
        text, model, voice = body.get("input"), body.get("model"), body.get("voice")
        if not isinstance(text, str) or not text or not model or not voice:
            return _error(400, "'input', 'model', 'voice' are required", _INVALID)
        if body.get("response_format", "mp3") != "pcm":
            return _error(400, "only response_format 'pcm'", _INVALID)
        speed = float(body.get("speed") or 1.0)

        from meetbot.speech.local_tts import PiperTTS

        noise = 0.0 if self.deterministic_voice else None
        tts = PiperTTS(length_scale=1.0 / speed, noise_scale=noise, noise_w_scale=noise)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        resampler = StreamResampler(tts.sample_rate, OPENAI_PCM_RATE)
        try:
            async for chunk in tts.synthesize(text):
                await self._write(response, resampler.process(chunk).tobytes())
            await self._write(response, resampler.flush().tobytes())
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            log.debug("speech client went away")
            raise
        return response

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        step = max(1, self.chunk_bytes)
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            await response.write(piece)
            self.speech_bytes_sent += len(piece)


def _error(status: int, message: str, kind: str) -> web.Response:
    """An error in the OpenAI envelope, which the SDK turns into ``APIStatusError``."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status)


async def start_fake_openai(
    *,
    transcript_text: str | None = None,
    delay_s: float = 0.0,
    fail_status: int | None = None,
    deterministic_voice: bool = False,
    stt: SpeechToText | None = None,
) -> FakeOpenAIAudio:
    """Starts the fake on 127.0.0.1 with a free port; ``base_url`` ends in ``/v1``."""
    fake = FakeOpenAIAudio(
        base_url="",
        transcript_text=transcript_text,
        delay_s=delay_s,
        fail_status=fail_status,
        deterministic_voice=deterministic_voice,
        stt=stt,
    )
    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", fake._transcriptions)
    app.router.add_post("/v1/audio/speech", fake._speech)
    # Cancel handlers whose client hung up (a timed-out request must not keep synthesizing).
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.base_url = f"http://{host}:{port}/v1"
    fake._runner = runner
    return fake
