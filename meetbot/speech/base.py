"""Small interfaces every speech engine implements, so local and remote engines swap freely."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from meetbot.events import PCM16


class SpeechError(RuntimeError):
    """An engine failed (broken model path, endpoint timeout...). The meeting goes on."""


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str = "en"
    no_speech_prob: float = 0.0


class SpeechToText(Protocol):
    """Turns one utterance (mono int16 at ``STT_SAMPLE_RATE``) into text, off the event loop."""

    async def transcribe(self, pcm: PCM16) -> Transcript: ...

    def set_vocabulary(self, words: Sequence[str]) -> None:
        """Bias recognition toward the meeting's words (names, agenda titles) from the next
        utterance on; an empty sequence removes the bias.

        Called from the event loop whenever the meeting changes, so it must be cheap and
        thread-safe. An engine that cannot be biased does nothing: the words are a hint,
        never a requirement.
        """
        ...


class TextToSpeech(Protocol):
    """Synthesizes text to mono int16 audio at ``sample_rate``, streamed in chunks.

    Work runs off the event loop; the first chunk should arrive as early as the engine allows.
    """

    sample_rate: int

    def synthesize(self, text: str) -> AsyncIterator[PCM16]: ...
