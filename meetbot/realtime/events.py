"""The OpenAI Realtime protocol as data: event builders, a tolerant parser, session settings.

Both ends of meetbot's speech-to-speech mode use this module: the client (``client.py``,
``persona.py``) builds client events and parses server events, the offline server
(``server.py``) does the opposite. Keeping the wire names in one place means the two ends
cannot drift apart, and a test can check them against the official SDK's types.

The names are those of the current (GA) Realtime API: ``response.output_audio.delta``,
``conversation.item.added`` and a nested ``session.audio`` object. Servers still speaking the
beta dialect (``response.audio.delta``, ``conversation.item.created``, flat
``input_audio_format``) are understood too: :func:`parse_server_event` maps their event names
onto the GA ones, and :meth:`SessionSettings.apply_update` accepts both session shapes.

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from meetbot.events import PCM16

JsonObject = dict[str, Any]

SAMPLE_RATE: Final = 24_000
"""``pcm16`` (``audio/pcm``) in the Realtime API is mono signed 16-bit little-endian at 24 kHz."""

MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
"""An ``input_audio_buffer.append`` may carry up to 15 MiB of base64; a little headroom."""

BETA_ALIASES: Final[dict[str, str]] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}
"""Beta event names -> the GA names this package works with."""


class EventError(ValueError):
    """A frame that is not a usable Realtime event (bad JSON, no ``type``, wrong field types).

    ``code`` is what the offline server puts in its ``error`` event; the client only logs it.
    """

    def __init__(self, message: str, code: str = "invalid_event") -> None:
        super().__init__(message)
        self.code = code


def new_id(prefix: str) -> str:
    """An id shaped like the API's (``item_...``, ``resp_...``, ``event_...``)."""
    return f"{prefix}_{secrets.token_hex(10)}"


# --- audio ------------------------------------------------------------------------------------


def encode_audio(pcm: PCM16) -> str:
    """int16 mono samples -> the base64 of their little-endian bytes (``pcm16``)."""
    return base64.b64encode(np.ascontiguousarray(pcm, dtype="<i2").tobytes()).decode("ascii")


def decode_audio(data: str) -> PCM16:
    """Base64 ``pcm16`` -> int16 samples. Raises :class:`EventError` on bad base64 or an odd
    byte count, so one corrupt delta can be skipped instead of playing noise."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventError(f"audio is not valid base64: {exc}", "invalid_audio") from None
    if len(raw) % 2:
        raise EventError(f"pcm16 audio has an odd number of bytes ({len(raw)})", "invalid_audio")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def heard_prefix(text: str, fraction: float) -> str:
    """The words of ``text`` a listener heard when playback stopped ``fraction`` of the way in.

    Proportional to time, as the cascade does it: good enough to keep the transcript and the
    model's context honest about what the room actually heard.
    """
    if fraction >= 1.0:
        return text
    words = text.split()
    if fraction <= 0.0 or not words:
        return ""
    keep = max(1, int(len(words) * fraction))  # a word begun was heard, as in the cascade
    return " ".join(words[:keep]) + ("…" if keep < len(words) else "")


# --- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One parsed event: its (GA) ``type`` and the whole JSON object."""

    type: str
    data: JsonObject

    def text(self, key: str, default: str | None = None) -> str:
        """A string field; :class:`EventError` when missing (and no default) or not a string."""
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise EventError(f"{self.type}: field {key!r} must be a string", "invalid_value")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise EventError(f"{self.type}: field {key!r} must be a string", "invalid_value")
        return value

    def mapping(self, key: str, default: JsonObject | None = None) -> JsonObject:
        """An object field; :class:`EventError` when missing (and no default) or not an object."""
        value = self.data.get(key, default)
        if not isinstance(value, dict):
            raise EventError(f"{self.type}: field {key!r} must be an object", "invalid_value")
        return value

    def number(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EventError(f"{self.type}: field {key!r} must be a number", "invalid_value")
        return int(value)


def parse_event(raw: str | bytes, *, aliases: bool = True) -> Event:
    """Parse one WebSocket text frame into an :class:`Event`.

    Only the envelope is checked here (a JSON object with a string ``type``); fields are checked
    where they are read, through the typed accessors of :class:`Event`. With ``aliases``, beta
    event names are mapped to their GA names.
    """
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise EventError("an event must be UTF-8 JSON text", "invalid_json") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise EventError(f"not valid JSON: {exc}", "invalid_json") from None
    if not isinstance(data, dict):
        raise EventError("an event must be a JSON object", "invalid_json")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise EventError("an event needs a string field 'type'", "missing_type")
    if aliases:
        kind = BETA_ALIASES.get(kind, kind)
    return Event(kind, data)


def dumps(event: JsonObject) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


# --- session settings -------------------------------------------------------------------------

TURN_DETECTION_TYPES: Final = ("server_vad", "semantic_vad")


@dataclass
class TurnDetection:
    """``server_vad`` settings (``semantic_vad`` is accepted and treated like it offline)."""

    type: str = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    def to_wire(self) -> JsonObject:
        out: JsonObject = {
            "type": self.type,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }
        if self.type == "server_vad":
            out.update(
                threshold=self.threshold,
                prefix_padding_ms=self.prefix_padding_ms,
                silence_duration_ms=self.silence_duration_ms,
            )
        return out

    @classmethod
    def from_wire(cls, data: object, base: TurnDetection | None) -> TurnDetection | None:
        """``None`` turns detection off; an object updates ``base`` (or the defaults)."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise EventError("turn_detection must be an object or null", "invalid_value")
        kind = data.get("type", base.type if base else "server_vad")
        if kind not in TURN_DETECTION_TYPES:
            raise EventError(f"unsupported turn_detection type {kind!r}", "invalid_value")
        td = TurnDetection(**vars(base)) if base is not None else TurnDetection()
        td.type = kind
        for key, typ in (("threshold", float), ("prefix_padding_ms", int),
                         ("silence_duration_ms", int)):
            if key in data and data[key] is not None:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise EventError(f"turn_detection.{key} must be a number", "invalid_value")
                setattr(td, key, typ(value))
        for key in ("create_response", "interrupt_response"):
            if key in data and data[key] is not None:
                if not isinstance(data[key], bool):
                    raise EventError(f"turn_detection.{key} must be a boolean", "invalid_value")
                setattr(td, key, data[key])
        if not 0.0 <= td.threshold <= 1.0:
            raise EventError("turn_detection.threshold must be within 0..1", "invalid_value")
        if not 0 <= td.silence_duration_ms <= 10_000 or not 0 <= td.prefix_padding_ms <= 5_000:
            raise EventError("turn_detection durations are out of range", "invalid_value")
        return td


@dataclass
class SessionSettings:
    """The part of a Realtime session both ends care about, and its two wire shapes."""

    model: str = "meetbot-local"
    instructions: str = ""
    voice: str = "alloy"
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    transcription_model: str | None = "whisper-1"
    """None: input transcription off (no ``...input_audio_transcription.completed`` events)."""
    tools: list[JsonObject] = field(default_factory=list)
    tool_choice: str = "auto"
    temperature: float | None = None

    def tool_names(self) -> set[str]:
        return {str(t.get("name")) for t in self.tools if t.get("type", "function") == "function"}

    def to_wire(self, *, include_type: bool = True) -> JsonObject:
        """The GA ``session`` object (as in ``session.update`` / ``session.created``)."""
        pcm = {"type": "audio/pcm", "rate": SAMPLE_RATE}
        audio_in: JsonObject = {
            "format": pcm,
            "turn_detection": self.turn_detection.to_wire() if self.turn_detection else None,
            "transcription": (
                {"model": self.transcription_model} if self.transcription_model else None
            ),
        }
        out: JsonObject = {
            "model": self.model,
            "instructions": self.instructions,
            "output_modalities": list(self.output_modalities),
            "audio": {"input": audio_in, "output": {"format": pcm, "voice": self.voice}},
            "tools": list(self.tools),
            "tool_choice": self.tool_choice,
        }
        if include_type:
            out = {"type": "realtime", **out}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        return out

    def apply_update(self, session: JsonObject) -> None:
        """Apply a ``session.update``'s ``session`` object, GA or beta shaped.

        Validates everything first and changes nothing on error, so a bad update leaves the
        session as it was (the server answers it with an ``error`` event).
        """
        new = SessionSettings(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        kind = session.get("type")
        if kind is not None and kind != "realtime":
            raise EventError(f"session.type {kind!r} is not supported (only 'realtime')",
                             "invalid_value")
        if "instructions" in session:
            new.instructions = _str_field(session, "instructions", allow_none=True)
        if "model" in session and session["model"] is not None:
            new.model = _str_field(session, "model")
        modalities = session.get("output_modalities", session.get("modalities"))
        if modalities is not None:
            if not isinstance(modalities, list) or not all(
                m in ("audio", "text") for m in modalities
            ):
                raise EventError("output_modalities must be a list of 'audio'/'text'",
                                 "invalid_value")
            new.output_modalities = ["audio"] if "audio" in modalities else ["text"]
        audio = session.get("audio")
        if audio is not None:
            if not isinstance(audio, dict):
                raise EventError("session.audio must be an object", "invalid_value")
            audio_in = audio.get("input") or {}
            audio_out = audio.get("output") or {}
            if not isinstance(audio_in, dict) or not isinstance(audio_out, dict):
                raise EventError("session.audio.input/output must be objects", "invalid_value")
            _check_format(audio_in.get("format"))
            _check_format(audio_out.get("format"))
            if "turn_detection" in audio_in:
                new.turn_detection = TurnDetection.from_wire(
                    audio_in["turn_detection"], self.turn_detection
                )
            if "transcription" in audio_in:
                new.transcription_model = _transcription_model(audio_in["transcription"])
            if audio_out.get("voice") is not None:
                voice = audio_out["voice"]
                new.voice = voice.get("id", "") if isinstance(voice, dict) else str(voice)
        # The beta shape: flat fields.
        for key in ("input_audio_format", "output_audio_format"):
            if key in session:
                _check_format(session[key])
        if "turn_detection" in session:
            new.turn_detection = TurnDetection.from_wire(
                session["turn_detection"], self.turn_detection
            )
        if "input_audio_transcription" in session:
            new.transcription_model = _transcription_model(session["input_audio_transcription"])
        if session.get("voice") is not None:
            new.voice = _str_field(session, "voice")
        if "tools" in session:
            new.tools = _tools(session["tools"])
        if "tool_choice" in session and session["tool_choice"] is not None:
            choice = session["tool_choice"]
            new.tool_choice = choice if isinstance(choice, str) else "auto"
        if "temperature" in session:
            temp = session["temperature"]
            if temp is not None and (isinstance(temp, bool) or not isinstance(temp, int | float)):
                raise EventError("temperature must be a number", "invalid_value")
            new.temperature = None if temp is None else float(temp)
        for key in self.__dataclass_fields__:
            setattr(self, key, getattr(new, key))


def _str_field(data: JsonObject, key: str, allow_none: bool = False) -> str:
    """A string setting ("" for null where null is allowed)."""
    value = data.get(key)
    if value is None and allow_none:
        return ""
    if not isinstance(value, str):
        raise EventError(f"session.{key} must be a string", "invalid_value")
    return value


def _check_format(fmt: object) -> None:
    """Only 16-bit PCM at 24 kHz is spoken here (``pcm16`` / ``audio/pcm``)."""
    if fmt is None or fmt == "pcm16":
        return
    if isinstance(fmt, dict) and fmt.get("type", "audio/pcm") == "audio/pcm" and fmt.get(
        "rate", SAMPLE_RATE
    ) == SAMPLE_RATE:
        return
    raise EventError(
        f"unsupported audio format {fmt!r}: only pcm16 (audio/pcm at 24000 Hz)",
        "unsupported_audio_format",
    )


def _transcription_model(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EventError("transcription must be an object or null", "invalid_value")
    model = value.get("model", "whisper-1")
    return str(model) if model else "whisper-1"


def _tools(value: object) -> list[JsonObject]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EventError("tools must be a list", "invalid_value")
    tools: list[JsonObject] = []
    for tool in value:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise EventError("each tool must be an object with a string 'name'", "invalid_value")
        tools.append(tool)
    return tools


# --- client events ----------------------------------------------------------------------------


def session_update(session: JsonObject) -> JsonObject:
    return {"type": "session.update", "session": session}


def input_audio_append(pcm: PCM16) -> JsonObject:
    return {"type": "input_audio_buffer.append", "audio": encode_audio(pcm)}


def input_audio_commit() -> JsonObject:
    return {"type": "input_audio_buffer.commit"}


def input_audio_clear() -> JsonObject:
    return {"type": "input_audio_buffer.clear"}


def item_create(item: JsonObject, previous_item_id: str | None = None) -> JsonObject:
    out: JsonObject = {"type": "conversation.item.create", "item": item}
    if previous_item_id is not None:
        out["previous_item_id"] = previous_item_id
    return out


def system_message(text: str) -> JsonObject:
    """A ``system`` message item: context the model should know but not answer."""
    return {"type": "message", "role": "system",
            "content": [{"type": "input_text", "text": text}]}


def user_text_message(text: str) -> JsonObject:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def function_call_output(call_id: str, output: str) -> JsonObject:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def response_create(response: JsonObject | None = None) -> JsonObject:
    out: JsonObject = {"type": "response.create"}
    if response:
        out["response"] = response
    return out


def response_cancel(response_id: str | None = None) -> JsonObject:
    out: JsonObject = {"type": "response.cancel"}
    if response_id is not None:
        out["response_id"] = response_id
    return out


def item_truncate(item_id: str, audio_end_ms: int, content_index: int = 0) -> JsonObject:
    return {"type": "conversation.item.truncate", "item_id": item_id,
            "content_index": content_index, "audio_end_ms": max(0, int(audio_end_ms))}


# --- server events ----------------------------------------------------------------------------


def server_event(kind: str, **fields: Any) -> JsonObject:
    """A server event with a fresh ``event_id``."""
    return {"type": kind, "event_id": new_id("event"), **fields}


def error_event(message: str, code: str, *, kind: str = "invalid_request_error",
                param: str | None = None, event_id: str | None = None) -> JsonObject:
    """The API's error envelope; ``event_id`` names the client event that caused it."""
    error: JsonObject = {"type": kind, "code": code, "message": message, "param": param,
                         "event_id": event_id}
    return server_event("error", error=error)
