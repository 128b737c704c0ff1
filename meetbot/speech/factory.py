"""Builds the configured speech engines; local ones unless the config asks for OpenAI.

Engines are imported lazily so a deployment that only uses the remote engines does not need
faster-whisper or Piper installed (and does not pay for importing them).
"""

from __future__ import annotations

from meetbot.config import SpeechConfig
from meetbot.speech.base import SpeechToText, TextToSpeech

LOCAL = "local"
OPENAI = "openai"


def build_stt(cfg: SpeechConfig) -> SpeechToText:
    """The speech-to-text engine named by ``cfg.stt``."""
    kind = cfg.stt.strip().lower()
    if kind == LOCAL:
        from meetbot.speech.local_stt import WhisperSTT

        # local_stt_model: a directory, or "tiny.en" / "base" (resolved when the model loads).
        return WhisperSTT(cfg.local_stt_model, cpu_threads=cfg.stt_threads)
    if kind == OPENAI:
        from meetbot.speech.openai_stt import OpenAISTT

        return OpenAISTT(
            base_url=cfg.openai_base_url,
            api_key=cfg.openai_api_key,
            model=cfg.stt_model,
            timeout_s=cfg.timeout_s,
        )
    raise ValueError(f"unknown speech-to-text engine {cfg.stt!r} (expected 'local' or 'openai')")


def build_tts(cfg: SpeechConfig, length_scale: float | None = None) -> TextToSpeech:
    """The text-to-speech engine named by ``cfg.tts``.

    ``length_scale`` sets the speaking pace as Piper understands it (1.2 is 20 % slower, as in
    a scenario voice ``piper:1.2``); for OpenAI it becomes ``speed = 1 / length_scale``.
    """
    if length_scale is not None and length_scale <= 0:
        raise ValueError(f"length_scale must be positive, got {length_scale}")
    kind = cfg.tts.strip().lower()
    if kind == LOCAL:
        from meetbot.speech.local_tts import PiperTTS

        return PiperTTS(cfg.local_tts_voice, length_scale=length_scale)
    if kind == OPENAI:
        from meetbot.speech.openai_tts import OpenAITTS

        speed = None if length_scale is None else min(4.0, max(0.25, 1.0 / length_scale))
        return OpenAITTS(
            base_url=cfg.openai_base_url,
            api_key=cfg.openai_api_key,
            model=cfg.tts_model,
            voice=cfg.tts_voice,
            timeout_s=cfg.timeout_s,
            speed=speed,
        )
    raise ValueError(f"unknown text-to-speech engine {cfg.tts!r} (expected 'local' or 'openai')")


def build_voice_of_bot(cfg: SpeechConfig) -> TextToSpeech:
    """The bot's own voice: ``cfg.tts`` behind the phrase cache (short phrases ready at once,
    no leading silence). Scenario voices of simulated people do without."""
    from meetbot.speech.phrase_cache import CachedSpeech

    return CachedSpeech(build_tts(cfg))
