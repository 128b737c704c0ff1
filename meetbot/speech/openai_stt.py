"""Remote speech-to-text through the OpenAI audio transcription API (or a compatible server).

The utterance goes up as a 16 kHz mono WAV; the answer is JSON with ``text``. Every failure
(connection refused, timeout, HTTP error, odd answer) becomes a ``SpeechError`` naming the
endpoint, so the conversation stage can log it and carry on. Retries are off by default: a
retried transcription answers too late to be useful in a live conversation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import openai

from meetbot.events import PCM16, STT_SAMPLE_RATE
from meetbot.speech.audio import wav_bytes
from meetbot.speech.base import SpeechError, Transcript

NO_API_KEY = "not-needed"
"""Sent when no key is configured (self-hosted OpenAI-compatible servers ignore it). Passing
it explicitly also keeps the SDK from reading ``OPENAI_API_KEY`` from the environment."""


def describe_openai_error(endpoint: str, exc: BaseException) -> str:
    """A one-line account of what went wrong talking to ``endpoint``."""
    if isinstance(exc, openai.APITimeoutError | TimeoutError) or "Timeout" in type(exc).__name__:
        return f"{endpoint}: timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"{endpoint}: HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return f"{endpoint}: connection failed: {cause}"
    return f"{endpoint}: {type(exc).__name__}: {exc}"


class OpenAISTT:
    """Transcription over HTTP; implements :class:`~meetbot.speech.base.SpeechToText`."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str = "whisper-1",
        timeout_s: float = 10.0,
        max_retries: int = 0,
        language: str | None = "en",
    ) -> None:
        """
        Args:
            base_url: e.g. ``http://127.0.0.1:8000/v1``; None means api.openai.com.
            timeout_s: bound on the whole request, connection to answer.
            language: ISO code sent as a hint (None: let the service detect it).
        """
        self.model = model
        self.timeout_s = timeout_s
        self.language = language
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or NO_API_KEY,
            timeout=timeout_s,
            max_retries=max_retries,
        )
        self.endpoint = f"{str(self._client.base_url).rstrip('/')}/audio/transcriptions"

    def set_vocabulary(self, words: Sequence[str]) -> None:
        """Does nothing: what a remote service does with a prompt is unknown (OpenAI's takes
        one, compatible servers may ignore or reject it), so the request stays as it is."""

    async def transcribe(self, pcm: PCM16) -> Transcript:
        """Uploads one utterance (int16 mono, 16 kHz) and returns the service's text."""
        samples = np.asarray(pcm).reshape(-1)
        if samples.dtype != np.int16:
            raise TypeError(f"expected int16 PCM at {STT_SAMPLE_RATE} Hz, got {samples.dtype}")
        if len(samples) == 0:
            return Transcript(text="", no_speech_prob=1.0)
        upload = wav_bytes(samples, STT_SAMPLE_RATE)
        try:
            # The SDK's timeout bounds each network phase; this bounds the total, so a
            # server that trickles its answer cannot hold the turn forever.
            async with asyncio.timeout(self.timeout_s):
                result = await self._client.audio.transcriptions.create(
                    model=self.model,
                    file=("utterance.wav", upload, "audio/wav"),
                    response_format="json",
                    language=self.language or openai.omit,
                )
        except (openai.OpenAIError, TimeoutError) as exc:
            raise SpeechError(describe_openai_error(self.endpoint, exc)) from exc
        text = getattr(result, "text", None)
        if not isinstance(text, str):
            raise SpeechError(f"{self.endpoint}: answer has no text: {result!r:.200}")
        return Transcript(text=text.strip(), language=self.language or "en")

    async def aclose(self) -> None:
        """Closes the HTTP connection pool."""
        await self._client.close()
