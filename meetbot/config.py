"""The one typed configuration object, built from CLI flags and environment by ``cli.py``.

No other module reads the environment: everything a stage needs is passed down from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class VadConfig:
    """Voice activity detection per participant (webrtcvad)."""

    aggressiveness: int = 2
    """0 (least aggressive about filtering non-speech) .. 3 (most)."""
    frame_ms: int = 20
    start_ms: int = 60
    """Voiced audio needed before an utterance starts (start hangover)."""
    end_ms: int = 500
    """Silence, on the wall clock, that ends an utterance (end hangover)."""
    min_utterance_ms: int = 200
    """Shorter bursts (coughs, clicks) are dropped."""
    max_utterance_s: float = 30.0
    """Long monologues are cut into pieces of at most this length."""
    pre_roll_ms: int = 200
    """Audio kept from before the onset so the first syllable is not clipped."""


@dataclass
class SpeechConfig:
    """Which speech engines to use; local ones are the default."""

    stt: str = "local"  # "local" | "openai"
    tts: str = "local"  # "local" | "openai"
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    stt_model: str = "whisper-1"
    tts_model: str = "tts-1"
    tts_voice: str = "alloy"
    timeout_s: float = 10.0
    stt_threads: int = 2


@dataclass
class BrainConfig:
    """The brain: rule-based by default, an OpenAI-compatible chat model optionally."""

    kind: str = "rules"  # "rules" | "llm"
    base_url: str | None = None
    api_key: str | None = None
    model: str = "gpt-4o-mini"
    deadline_s: float = 4.0
    """A turn whose LLM reply has not started by then falls back to the rule brain."""


@dataclass
class BotConfig:
    """Everything one bot session needs."""

    name: str = "assistant"
    persona: str = "assistant"  # "echo" | "assistant"
    wake_phrases: tuple[str, ...] = ()
    follow_up_s: float = 8.0
    vad: VadConfig = field(default_factory=VadConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    brain: BrainConfig = field(default_factory=BrainConfig)
    data_dir: Path = Path("meetings")
    latency_log: Path | None = None
