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
    """Silence, on the wall clock, that ends an utterance (end hangover). Silence counts from
    where the sound stopped (energy), not from webrtcvad's last "voiced" frame, which trails
    a fading word by a couple of hundred milliseconds."""
    pause_ms: int = 80
    """Silence after which transcription starts early, while the end hangover runs. If that
    transcription reads as a finished sentence, the turn may end there (``end_turn``)."""
    early_end: bool = True
    """Let what the transcription at a pause says move the end: a finished sentence ends the
    turn there; words that leave the thought open ("Assistant," / "... and") hold it open
    for ``hold_ms`` of silence instead of ``end_ms``."""
    hold_ms: int = 1500
    """Silence that ends a turn whose words so far leave the thought open."""
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
    local_stt_model: str | None = None
    """A CTranslate2 Whisper directory; None: the bundled tiny.en."""
    local_tts_voice: str | None = None
    """A Piper voice ``.onnx`` (config beside it); None: the bundled en_US joe voice."""
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    stt_model: str = "whisper-1"
    tts_model: str = "tts-1"
    tts_voice: str = "alloy"
    timeout_s: float = 10.0
    stt_threads: int = 1
    """CTranslate2 threads per transcription. One is faster than two for short utterances on
    a small machine (Whisper tiny.en, 3 s: about 200 ms against 290 on 2 cores): decoding is
    many small steps, and waking a second thread for each costs more than it saves. It also
    leaves a core to the event loop and the media threads."""


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
class RealtimeConfig:
    """Speech-to-speech over the OpenAI Realtime protocol (``pipeline="speech-to-speech"``).

    The names mirror what voice platforms call these settings. ``websocket_url`` None means
    meetbot's own offline Realtime server (``/v1/realtime`` on the room server the bot joins).
    See ``docs/realtime.md``.
    """

    provider: str = "openai"
    """Only used for logs and defaults: any service speaking the OpenAI Realtime protocol."""
    api_key: str | None = None
    websocket_url: str | None = None
    """e.g. ``wss://api.openai.com/v1/realtime``; ``?model=`` is added when missing."""
    model: str = "gpt-realtime"
    voice: str = "alloy"
    instructions: str | None = None
    """None: meetbot's meeting-assistant instructions (they name the bot)."""
    turn_detection: str = "none"
    """``none``: the bot's own per-participant VAD cuts and commits each turn; ``server_vad`` /
    ``semantic_vad``: the session's detection commits them. Either way the bot decides who is
    addressed and the session never answers on its own; see ``docs/realtime.md``."""
    input_audio_format: str = "pcm16"
    output_audio_format: str = "pcm16"
    modalities: tuple[str, ...] = ("audio",)
    temperature: float | None = None
    transcription_model: str = "whisper-1"
    """Input transcription (needed for addressing and the transcript)."""
    notes_from_unaddressed: bool = True
    """Ask the model to take notes (tools only, no speech) from turns not meant for the bot."""
    fallback: bool = True
    """Fall back to the cascade when the session cannot be (re)established."""
    reconnect_attempts: int = 4
    give_up_after_s: float = 5.0
    """Fall back after this long without a connection, whichever comes first."""
    connect_timeout_s: float = 3.0


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
    pipeline: str = "cascade"  # "cascade" | "speech-to-speech"
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    data_dir: Path = Path("meetings")
    latency_log: Path | None = None
