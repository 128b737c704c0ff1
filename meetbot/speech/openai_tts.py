"""Remote text-to-speech through the OpenAI speech API (or a compatible server), streamed.

We ask for ``response_format="pcm"``: raw 24 kHz signed 16-bit little-endian mono, which needs
no decoder and can be played from the first bytes on. HTTP chunks do not respect sample
boundaries, so an odd trailing byte is carried over to the next chunk. Failures become a
``SpeechError`` naming the endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import openai

from meetbot.events import PCM16
from meetbot.speech.audio import pcm_from_bytes
from meetbot.speech.base import SpeechError
from meetbot.speech.openai_stt import NO_API_KEY, describe_openai_error

OPENAI_PCM_RATE = 24_000
"""The rate of the API's ``pcm`` response format (fixed by the protocol)."""


class OpenAITTS:
    """Speech over HTTP; implements :class:`~meetbot.speech.base.TextToSpeech`."""

    sample_rate: int = OPENAI_PCM_RATE

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str = "tts-1",
        voice: str = "alloy",
        timeout_s: float = 10.0,
        max_retries: int = 0,
        speed: float | None = None,
        min_chunk_bytes: int = 4800,
    ) -> None:
        """
        Args:
            base_url: e.g. ``http://127.0.0.1:8000/v1``; None means api.openai.com.
            timeout_s: bound on connecting and on each wait for bytes (time to first audio
                included); a long reply may take longer in total as long as audio flows.
            speed: 0.25-4.0, 1 is normal (the inverse of Piper's length_scale).
            min_chunk_bytes: bytes gathered before a chunk is yielded (4800 = 100 ms), so
                consumers are not flooded with tiny network reads.
        """
        self.model = model
        self.voice = voice
        self.speed = speed
        self.min_chunk_bytes = max(2, min_chunk_bytes)
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or NO_API_KEY,
            timeout=timeout_s,
            max_retries=max_retries,
        )
        self.endpoint = f"{str(self._client.base_url).rstrip('/')}/audio/speech"

    async def synthesize(self, text: str) -> AsyncGenerator[PCM16, None]:
        """Yields int16 mono audio at 24 kHz as it streams in."""
        if not text.strip():
            return
        pending = b""
        try:
            async with self._client.audio.speech.with_streaming_response.create(
                model=self.model,
                voice=self.voice,
                input=text,
                response_format="pcm",
                speed=self.speed if self.speed is not None else openai.omit,
            ) as response:
                async for data in response.iter_bytes():
                    pending += data
                    if len(pending) < self.min_chunk_bytes:
                        continue
                    whole = len(pending) - len(pending) % 2
                    chunk, pending = pending[:whole], pending[whole:]
                    yield pcm_from_bytes(chunk)
        except SpeechError:
            raise
        except Exception as exc:  # SDK errors, and transport errors raised mid-stream
            raise SpeechError(describe_openai_error(self.endpoint, exc)) from exc
        whole = len(pending) - len(pending) % 2
        if whole:
            yield pcm_from_bytes(pending[:whole])

    async def aclose(self) -> None:
        """Closes the HTTP connection pool."""
        await self._client.close()
