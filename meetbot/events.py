"""Typed events that flow between the stages of a bot session.

Every event carries monotonic timestamps (``time.monotonic()``) so latency can be measured at
each stage and tests can reason about it. ``CLOCK_MONOTONIC`` is system-wide on Linux, so times
taken in different processes on the same machine are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

PCM16 = npt.NDArray[np.int16]
"""Mono signed 16-bit samples."""

STT_SAMPLE_RATE = 16_000
"""Rate of the per-participant PCM stream handed to VAD and speech-to-text."""


@dataclass(frozen=True)
class Participant:
    """A remote participant as announced by the room server."""

    id: str
    name: str
    kind: str = "person"  # "person" or "bot"


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech by one participant, cut by voice activity detection.

    ``started_at``/``ended_at`` are monotonic times of the first and last voiced audio as it
    arrived at the bot; ``detected_at`` is when the end was decided (after the hangover).
    ``revision`` identifies how far the speech had got (see ``ParticipantListener.end_turn``).
    """

    participant_id: str
    participant_name: str
    started_at: float
    ended_at: float
    detected_at: float
    pcm: PCM16
    sample_rate: int = STT_SAMPLE_RATE
    revision: int = 0

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate


@dataclass(frozen=True)
class SpeechStarted:
    """A participant began speaking (VAD onset); used for barge-in."""

    participant_id: str
    participant_name: str
    at: float


@dataclass(frozen=True)
class Turn:
    """A transcribed utterance handed to the brain.

    ``addressed`` says whether the bot should answer (its name, a wake phrase, a follow-up
    window, or a one-person call). The brain still sees unaddressed turns so it can take notes.
    """

    speaker_id: str
    speaker_name: str
    text: str
    addressed: bool
    started_at: float
    ended_at: float
    wall_time: float
    """``time.time()`` when the utterance ended, for notes and resolving dates like "Friday"."""
    amends: Turn | None = None
    """The earlier turn this one continues: the speaker went on just as the bot began to
    answer it ("Assistant, the agenda is the roadmap review." [pause] "The budget request and
    hiring."). Then ``text`` is the whole utterance, both parts, and ``started_at`` the first
    part's start. A brain undoes what it did for ``amends`` (notes, transcript) and handles this
    turn's whole text instead (it may have done nothing for ``amends`` yet, if it was cut off
    before it got that far); the bot stopped its answer to the first part."""


@dataclass
class TurnTiming:
    """Monotonic stage times of one bot turn, written as a JSON line per turn."""

    speaker_name: str
    speech_end: float
    transcript_ready: float | None = None
    first_reply_text: float | None = None
    first_audio_synth: float | None = None
    first_audio_sent: float | None = None
    text: str = ""
    reply: str = ""
    extra: dict[str, float] = field(default_factory=dict)
