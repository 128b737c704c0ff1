"""The room signaling protocol as data: message types, validation and rate rules.

Everything here is pure (no I/O, no clock reads) so the rules in ``docs/protocol.md`` can be
tested on their own and reused by clients that want to check what they send. The server in
``signaling.server`` only glues these rules to WebSockets.

A client message is parsed in a fixed order so the error a sender gets names the first thing it
must fix: size, JSON, object, ``type``, known type, unknown fields, missing fields, field types,
then field values (room name, display name, kind).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Final, Literal, TypeAlias

MAX_MESSAGE_BYTES: Final = 64 * 1024
"""Default limit for one message, measured on its UTF-8 encoding."""

ROOM_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""Room names are safe to put in a URL path and a file name as they are."""

MAX_NAME_CHARS: Final = 64

Kind: TypeAlias = Literal["person", "bot"]
KINDS: Final[tuple[Kind, ...]] = ("person", "bot")


class ErrorCode(StrEnum):
    """Codes of ``error`` replies; the values are what goes on the wire."""

    BAD_JSON = "bad-json"
    BAD_MESSAGE = "bad-message"
    UNKNOWN_TYPE = "unknown-type"
    UNKNOWN_FIELD = "unknown-field"
    TOO_LARGE = "too-large"
    BAD_ROOM = "bad-room"
    BAD_NAME = "bad-name"
    ROOM_FULL = "room-full"
    RATE_LIMITED = "rate-limited"
    NOT_JOINED = "not-joined"
    ALREADY_JOINED = "already-joined"
    UNKNOWN_PEER = "unknown-peer"
    FORBIDDEN = "forbidden"


class ProtocolError(Exception):
    """A message the server refuses; becomes one ``error`` reply and nothing else.

    ``ref`` is the offending message's type when it is a known one, so a client can tell which
    of its requests failed without the server echoing arbitrary input back.
    """

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref

    def to_message(self) -> dict[str, object]:
        """The ``error`` message to send back."""
        return error_message(self.code, self.message, self.ref)


# --- client -> server messages ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    room: str
    name: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Offer:
    to: str
    sdp: str


@dataclass(frozen=True, slots=True)
class Answer:
    to: str
    sdp: str


@dataclass(frozen=True, slots=True)
class Candidate:
    to: str
    candidate: dict[str, object] | None


@dataclass(frozen=True, slots=True)
class Speaking:
    speaking: bool


@dataclass(frozen=True, slots=True)
class Caption:
    text: str
    final: bool
    speaker: str | None = None
    """Whose words these are, when a bot captions someone else's speech."""


@dataclass(frozen=True, slots=True)
class Notes:
    notes: dict[str, object]


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Leave:
    pass


ClientMessage: TypeAlias = (
    Join | Offer | Answer | Candidate | Speaking | Caption | Notes | Ping | Leave
)
Directed: TypeAlias = Offer | Answer | Candidate
"""Messages relayed to one peer (``to`` becomes ``from``)."""

_NONE = type(None)

# type -> field -> (accepted Python types after json.loads, what to call them in errors).
# bool is listed explicitly and never accepted where a str/object is wanted; JSON has no
# int/bool confusion for the fields we use because none of them is numeric.
_SCHEMA: Final[dict[str, dict[str, tuple[tuple[type, ...], str]]]] = {
    "join": {
        "room": ((str,), "a string"),
        "name": ((str,), "a string"),
        "kind": ((str,), "a string"),
    },
    "offer": {"to": ((str,), "a string"), "sdp": ((str,), "a string")},
    "answer": {"to": ((str,), "a string"), "sdp": ((str,), "a string")},
    "candidate": {"to": ((str,), "a string"), "candidate": ((dict, _NONE), "an object or null")},
    "speaking": {"speaking": ((bool,), "a boolean")},
    "caption": {"text": ((str,), "a string"), "final": ((bool,), "a boolean")},
    "notes": {"notes": ((dict,), "an object")},
    "ping": {},
    "leave": {},
}

# Fields a message may carry but need not.
_OPTIONAL: Final[dict[str, dict[str, tuple[tuple[type, ...], str]]]] = {
    "caption": {"speaker": ((str,), "a string")},
}

CLIENT_TYPES: Final = frozenset(_SCHEMA)


def check_room(room: str) -> None:
    """Raise ``bad-room`` unless ``room`` is a valid room name."""
    if not ROOM_RE.fullmatch(room):
        raise ProtocolError(
            ErrorCode.BAD_ROOM,
            "room names are 1-64 characters: letters, digits, '-' and '_'",
            "join",
        )


def is_valid_room(room: str) -> bool:
    return ROOM_RE.fullmatch(room) is not None


def check_name(name: str) -> None:
    """Raise ``bad-name`` unless ``name`` can be shown to other participants as it is.

    Printable only (no newlines or control characters that would garble lists and captions),
    and not blank, so every participant can be told apart on screen.
    """
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise ProtocolError(
            ErrorCode.BAD_NAME, f"display names are 1-{MAX_NAME_CHARS} characters", "join"
        )
    if not name.isprintable() or not name.strip():
        raise ProtocolError(
            ErrorCode.BAD_NAME,
            "display names must be printable characters and not only spaces",
            "join",
        )


def _utf8_len_exceeds(raw: str, limit: int) -> bool:
    """Whether ``raw`` encodes to more than ``limit`` bytes, without encoding when obvious."""
    if len(raw) > limit:
        return True  # every character takes at least one byte
    if len(raw) * 4 <= limit:
        return False  # every character takes at most four bytes
    return len(raw.encode("utf-8", "surrogatepass")) > limit


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def parse_message(raw: str, max_bytes: int = MAX_MESSAGE_BYTES) -> ClientMessage:
    """Validate one client text frame and return it as a typed message.

    Raises ``ProtocolError`` with the code the protocol prescribes. The size is checked on the
    raw text before parsing so an oversize frame costs no JSON work.
    """
    if _utf8_len_exceeds(raw, max_bytes):
        raise ProtocolError(ErrorCode.TOO_LARGE, f"messages are at most {max_bytes} bytes")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "a message must be a JSON object")
    msg_type = data.get("type")
    if not isinstance(msg_type, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "a message needs a string field 'type'")
    schema = _SCHEMA.get(msg_type)
    if schema is None:
        shown = msg_type if len(msg_type) <= 32 else msg_type[:32] + "..."
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {shown!r}")
    optional = _OPTIONAL.get(msg_type, {})
    unknown = sorted(k for k in data if k != "type" and k not in schema and k not in optional)
    if unknown:
        shown_fields = ", ".join(repr(k[:32]) for k in unknown[:5])
        raise ProtocolError(
            ErrorCode.UNKNOWN_FIELD, f"unknown field(s) in {msg_type!r}: {shown_fields}", msg_type
        )
    for name, (types, described) in schema.items():
        if name not in data:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"{msg_type!r} needs field {name!r}", msg_type
            )
        value = data[name]
        # bool is a subclass of int; reject it wherever it is not asked for by name.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                f"field {name!r} of {msg_type!r} must be {described}",
                msg_type,
            )
    for name, (types, described) in optional.items():
        if name in data and not isinstance(data[name], types):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                f"field {name!r} of {msg_type!r} must be {described}",
                msg_type,
            )
    return _build(msg_type, data)


def _build(msg_type: str, data: dict[str, object]) -> ClientMessage:
    """Turn a schema-checked object into its dataclass, checking field values."""
    match msg_type:
        case "join":
            room, name, kind = str(data["room"]), str(data["name"]), str(data["kind"])
            check_room(room)
            check_name(name)
            if kind == "person":
                return Join(room, name, "person")
            if kind == "bot":
                return Join(room, name, "bot")
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "kind must be 'person' or 'bot'", "join")
        case "offer":
            return Offer(str(data["to"]), str(data["sdp"]))
        case "answer":
            return Answer(str(data["to"]), str(data["sdp"]))
        case "candidate":
            cand = data["candidate"]
            return Candidate(str(data["to"]), _as_object(cand) if cand is not None else None)
        case "speaking":
            return Speaking(data["speaking"] is True)
        case "caption":
            speaker = data.get("speaker")
            return Caption(
                str(data["text"]), data["final"] is True, str(speaker) if speaker else None
            )
        case "notes":
            return Notes(_as_object(data["notes"]))
        case "ping":
            return Ping()
        case _:
            return Leave()


def _as_object(value: object) -> dict[str, object]:
    assert isinstance(value, dict)
    return {str(k): v for k, v in value.items()}


# --- server -> client messages ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A participant as other participants see it."""

    id: str
    name: str
    kind: Kind

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "kind": self.kind}


def error_message(code: ErrorCode, message: str, ref: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {"type": "error", "code": code.value, "message": message}
    if ref is not None:
        out["ref"] = ref
    return out


def welcome_message(peer_id: str, room: str, peers: list[PeerInfo]) -> dict[str, object]:
    return {"type": "welcome", "id": peer_id, "room": room, "peers": [p.to_json() for p in peers]}


def peer_joined_message(peer: PeerInfo) -> dict[str, object]:
    return {"type": "peer-joined", "peer": peer.to_json()}


def peer_left_message(peer_id: str) -> dict[str, object]:
    return {"type": "peer-left", "id": peer_id}


def relayed_message(msg: ClientMessage, sender: str) -> dict[str, object]:
    """The message others receive for a relayed client message: ``to`` replaced by ``from``."""
    match msg:
        case Offer(sdp=sdp):
            return {"type": "offer", "from": sender, "sdp": sdp}
        case Answer(sdp=sdp):
            return {"type": "answer", "from": sender, "sdp": sdp}
        case Candidate(candidate=cand):
            return {"type": "candidate", "from": sender, "candidate": cand}
        case Speaking(speaking=speaking):
            return {"type": "speaking", "from": sender, "speaking": speaking}
        case Caption(text=text, final=final, speaker=speaker):
            out: dict[str, object] = {"type": "caption", "from": sender, "text": text,
                                      "final": final}
            if speaker is not None:
                out["speaker"] = speaker
            return out
        case Notes(notes=notes):
            return {"type": "notes", "from": sender, "notes": notes}
        case _:
            raise ValueError(f"{type(msg).__name__} is not relayed")


PONG: Final[dict[str, object]] = {"type": "pong"}

_TYPE_NAMES: Final[dict[type, str]] = {
    Join: "join",
    Offer: "offer",
    Answer: "answer",
    Candidate: "candidate",
    Speaking: "speaking",
    Caption: "caption",
    Notes: "notes",
    Ping: "ping",
    Leave: "leave",
}


def message_type(msg: ClientMessage) -> str:
    """The wire ``type`` of a parsed client message."""
    return _TYPE_NAMES[type(msg)]


# --- rate limiting ---------------------------------------------------------------------------


class Verdict(Enum):
    """What to do with one incoming frame under the rate rules."""

    ACCEPT = "accept"
    DROP = "drop"
    CLOSE = "close"


@dataclass
class RateLimiter:
    """Token bucket per connection, plus a leaky count of dropped frames.

    The bucket lets a client burst (joining and offering to a full room at once) while capping
    its sustained rate. Dropping alone is not enough against a client that never stops, so drops
    are counted; the count leaks at ``max_dropped / forget_s`` per second, so a client that is
    briefly over the rate is never closed but one that floods for a while is (more than
    ``max_dropped`` drops within about ``forget_s`` seconds). Time is passed in, never read.
    """

    rate_per_s: float = 50.0
    burst: int = 100
    max_dropped: int = 200
    forget_s: float = 20.0
    tokens: float = field(init=False)
    dropped: float = field(init=False, default=0.0)
    _last: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1 or self.max_dropped < 0 or self.forget_s <= 0:
            raise ValueError("rate_per_s, forget_s must be > 0, burst >= 1, max_dropped >= 0")
        self.tokens = float(self.burst)

    def admit(self, now: float) -> Verdict:
        """Account one frame arriving at monotonic time ``now``."""
        if self._last is not None:
            elapsed = max(0.0, now - self._last)
            self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate_per_s)
            leak = elapsed * self.max_dropped / self.forget_s
            self.dropped = max(0.0, self.dropped - leak)
        self._last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return Verdict.ACCEPT
        self.dropped += 1.0
        return Verdict.CLOSE if self.dropped > self.max_dropped else Verdict.DROP
