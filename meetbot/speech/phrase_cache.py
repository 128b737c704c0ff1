"""Any text-to-speech engine, made quicker to start: a phrase cache and no leading silence.

A reply is heard only once its first sound plays. Two things delay that which have nothing
to do with the words: synthesizing a phrase the bot has said many times before ("Sure.",
"Okay."), and the silence a voice model puts before the first word (Piper: 40-50 ms). This
wrapper keeps the audio of short phrases (said before, or prepared ahead with ``prepare``) and
trims the silence at the start of every reply, for whichever engine it wraps.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable

import numpy as np

from meetbot.events import PCM16
from meetbot.speech.base import SpeechError, TextToSpeech

log = logging.getLogger(__name__)

MAX_CACHED_CHARS = 48
"""Phrases up to this long are kept (acknowledgements, stock sentences), not whole replies."""
MAX_ENTRIES = 256
_ONSET_RMS = 300.0
"""About -40 dBFS over 5 ms: where the voice begins."""
_KEEP_BEFORE_ONSET_S = 0.010


def trim_leading_silence(pcm: PCM16, rate: int) -> PCM16:
    """``pcm`` from 10 ms before its first audible 5 ms block (all of it if never audible)."""
    block = max(1, rate // 200)
    n = len(pcm) // block
    if n == 0:
        return pcm
    blocks = pcm[: n * block].astype(np.float32).reshape(n, block)
    loud = np.flatnonzero(np.sqrt(np.mean(blocks**2, axis=1)) >= _ONSET_RMS)
    if len(loud) == 0:
        return pcm
    start = max(0, int(loud[0]) * block - int(_KEEP_BEFORE_ONSET_S * rate))
    return pcm[start:]


class CachedSpeech:
    """Wraps a :class:`~meetbot.speech.base.TextToSpeech`; is one itself."""

    def __init__(self, inner: TextToSpeech) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self._cache: OrderedDict[str, PCM16] = OrderedDict()
        self.hits = 0

    async def load(self) -> None:
        load = getattr(self.inner, "load", None)
        if load is not None:
            await load()

    def cached(self, text: str) -> bool:
        return text.strip() in self._cache

    async def synthesize(self, text: str) -> AsyncIterator[PCM16]:
        key = text.strip()
        audio = self._cache.get(key)
        if audio is not None:
            self._cache.move_to_end(key)
            self.hits += 1
            yield audio
            return
        chunks: list[PCM16] = []
        async for chunk in self.inner.synthesize(text):
            if not chunks:
                chunk = trim_leading_silence(chunk, self.sample_rate)
            chunks.append(chunk)
            yield chunk
        # Reached only when the whole phrase was produced (not when the consumer stopped).
        if chunks and len(key) <= MAX_CACHED_CHARS:
            self._cache[key] = np.concatenate(chunks)
            while len(self._cache) > MAX_ENTRIES:
                self._cache.popitem(last=False)

    async def prepare(self, phrases: Iterable[str]) -> None:
        """Synthesize short phrases ahead, so that saying them later starts at once."""
        for phrase in phrases:
            if len(phrase.strip()) > MAX_CACHED_CHARS or self.cached(phrase):
                continue
            try:
                async for _ in self.synthesize(phrase):
                    pass
            except SpeechError as exc:
                log.warning("could not prepare %r: %s", phrase, exc)
                return
