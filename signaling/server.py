"""The room server: serves the room page and relays signaling between participants.

Media never passes through here; the server only introduces participants to each other and
relays their SDP, ICE candidates, captions, speaking flags and meeting notes (see
``docs/protocol.md``).

Shape: each WebSocket is a ``Connection`` with its own outbox and writer task, and all room
state lives in one ``Hub`` whose message handling is synchronous. So room state changes
atomically (no awaits in the middle of a join or a leave), and a slow or misbehaving client can
only fill its own outbox: a sender never waits on a receiver, and nothing one client sends can
stall or break another's connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import quote

from aiohttp import WSCloseCode, WSMsgType, web

from signaling.protocol import (
    MAX_MESSAGE_BYTES,
    PONG,
    Answer,
    Candidate,
    Caption,
    ClientMessage,
    ErrorCode,
    Join,
    Leave,
    Notes,
    Offer,
    PeerInfo,
    Ping,
    ProtocolError,
    RateLimiter,
    Speaking,
    Verdict,
    error_message,
    is_valid_room,
    message_type,
    parse_message,
    peer_joined_message,
    peer_left_message,
    relayed_message,
    welcome_message,
)

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"

MAX_OUTBOX_MESSAGES: Final = 1024
MAX_OUTBOX_CHARS: Final = 8 * 1024 * 1024
"""A receiver this far behind is closed rather than let it hold server memory."""

MAX_REMEMBERED_NOTES: Final = 256
"""Rooms whose latest notes are kept in memory, most recently updated first."""

HEARTBEAT_S: Final = 30.0
"""WebSocket ping interval; a peer that stops answering is dropped like a closed one."""

CLOSE_TIMEOUT_S: Final = 3.0
"""How long a close waits for the client's close frame before dropping the connection."""

ROOM_NAME_HELP: Final = "Room names are 1-64 characters: letters, digits, '-' and '_'."


@dataclass(frozen=True, slots=True)
class _Close:
    """Outbox sentinel: flush what is queued before it, then close with this code."""

    code: int
    reason: str


_STOP: Final = _Close(0, "")
"""Outbox sentinel: stop writing, the connection is already gone."""


class Connection:
    """One WebSocket client: its outbox, writer task, rate limiter and room membership.

    Only the writer task writes to the socket, in queue order, so replies and relayed messages
    keep their order (a `welcome` always precedes the `peer-joined` that follows it).
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        limiter: RateLimiter,
        remote: str,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.limiter = limiter
        self.remote = remote
        self.peer: PeerInfo | None = None
        self.room: Room | None = None
        self.closing = False
        self._outbox: asyncio.Queue[str | _Close] = asyncio.Queue()
        self._queued_chars = 0
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._aborted = False

    @property
    def label(self) -> str:
        if self.peer is None:
            return f"[{self.remote}]"
        return f"{self.peer.id} ({self.peer.name!r} in {self.room.name if self.room else '-'})"

    def start(self) -> None:
        self._writer = asyncio.create_task(
            self._run_writer(), name=f"signaling-writer {self.remote}"
        )

    def send(self, message: dict[str, object]) -> None:
        self.send_text(json.dumps(message, separators=(",", ":"), ensure_ascii=False))

    def send_text(self, text: str) -> None:
        """Queue a frame without waiting; a receiver too far behind is closed instead."""
        if self.closing:
            return
        if (
            self._outbox.qsize() >= MAX_OUTBOX_MESSAGES
            or self._queued_chars + len(text) > MAX_OUTBOX_CHARS
        ):
            log.warning("%s is not reading its messages; dropping it", self.label)
            self.abort(WSCloseCode.POLICY_VIOLATION, "too slow to receive")
            return
        self._queued_chars += len(text)
        self._outbox.put_nowait(text)

    def close_soon(self, code: int, reason: str) -> None:
        """Close after everything queued so far has been sent (e.g. the last error)."""
        if self.closing:
            return
        self.closing = True
        self._outbox.put_nowait(_Close(code, reason))

    def abort(self, code: int, reason: str) -> None:
        """Drop the connection now, backlog and all.

        For a peer that does not read: its writer is stuck and a close frame would queue behind
        megabytes it will never take, so the TCP connection is aborted instead (the client sees
        1006). The reader then ends and the usual leave follows.
        """
        if self._aborted:
            return
        self._aborted = True
        self.closing = True
        if self._writer is not None:
            self._writer.cancel()
        if self.transport is not None:
            self.transport.abort()
        else:
            self._closer = asyncio.create_task(self._close(code, reason, drain=False))

    async def finish(self) -> None:
        """The socket is done: let the writer flush or give up, bounded in time."""
        self.closing = True
        self._outbox.put_nowait(_STOP)
        tasks = [t for t in (self._writer, self._closer) if t is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S + 1.0)
        for task in pending:
            log.warning("%s: %s did not finish; cancelled", self.label, task.get_name())
            task.cancel()

    async def _close(self, code: int, reason: str, drain: bool = True) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=reason.encode(), drain=drain)

    async def _run_writer(self) -> None:
        """Drain the outbox into the socket; the only place that writes frames to it."""
        while True:
            item = await self._outbox.get()
            if isinstance(item, _Close):
                if item is not _STOP:
                    await self._close(item.code, item.reason)
                return
            self._queued_chars -= len(item)
            try:
                await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return  # closed under us; the reader sees it and cleans up


@dataclass
class Room:
    name: str
    members: dict[str, Connection] = field(default_factory=dict)
    """Peer id -> connection, in joining order."""

    def peers(self) -> list[PeerInfo]:
        return [c.peer for c in self.members.values() if c.peer is not None]

    def broadcast(self, message: dict[str, object], exclude: Connection | None = None) -> None:
        text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        for conn in self.members.values():
            if conn is not exclude:
                conn.send_text(text)


@dataclass
class ServerConfig:
    max_room_size: int = 16
    rate_per_s: float = 50.0
    burst: int = 100
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_dropped: int = 200


class Hub:
    """All rooms of one server and the rules for moving between them.

    Methods are synchronous on purpose: a message is handled completely (state changed, replies
    queued) before the next one, so there are no interleavings to reason about.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.rooms: dict[str, Room] = {}
        self.connections: set[Connection] = set()
        self.notes: OrderedDict[str, dict[str, object]] = OrderedDict()
        self._ids: set[str] = set()

    def participant_count(self) -> int:
        return sum(len(r.members) for r in self.rooms.values())

    def new_limiter(self) -> RateLimiter:
        c = self.config
        return RateLimiter(rate_per_s=c.rate_per_s, burst=c.burst, max_dropped=c.max_dropped)

    def _new_id(self) -> str:
        while True:
            peer_id = secrets.token_hex(4)
            if peer_id not in self._ids:
                self._ids.add(peer_id)
                return peer_id

    def admit(self, conn: Connection) -> bool:
        """Apply the rate rules to one incoming frame; False means ignore it."""
        if conn.closing:
            return False
        verdict = conn.limiter.admit(time.monotonic())
        if verdict is Verdict.ACCEPT:
            return True
        if verdict is Verdict.CLOSE:
            log.warning("%s kept flooding; closing it", conn.label)
            conn.send(
                error_message(ErrorCode.RATE_LIMITED, "too many messages; closing the connection")
            )
            conn.close_soon(WSCloseCode.POLICY_VIOLATION, "rate limit exceeded")
        else:
            conn.send(
                error_message(
                    ErrorCode.RATE_LIMITED,
                    f"over {self.config.rate_per_s:g} messages/s; message dropped",
                )
            )
        return False

    def handle_text(self, conn: Connection, raw: str) -> None:
        """Handle one text frame from ``conn``: validate, then act or answer an error."""
        if not self.admit(conn):
            return
        try:
            msg = parse_message(raw, self.config.max_message_bytes)
            self._dispatch(conn, msg)
        except ProtocolError as exc:
            log.debug("%s: %s: %s", conn.label, exc.code.value, exc.message)
            conn.send(exc.to_message())

    def handle_binary(self, conn: Connection) -> None:
        if self.admit(conn):
            conn.send(
                error_message(ErrorCode.BAD_MESSAGE, "binary frames are not supported; send JSON")
            )

    def _dispatch(self, conn: Connection, msg: ClientMessage) -> None:
        if isinstance(msg, Ping):
            conn.send(PONG)
            return
        if isinstance(msg, Join):
            self._join(conn, msg)
            return
        room, peer = conn.room, conn.peer
        ref = message_type(msg)
        if room is None or peer is None:
            raise ProtocolError(ErrorCode.NOT_JOINED, "send 'join' first", ref)
        match msg:
            case Leave():
                self.leave(conn)
            case Offer() | Answer() | Candidate():
                target = room.members.get(msg.to)
                if target is None or target is conn:
                    raise ProtocolError(
                        ErrorCode.UNKNOWN_PEER, f"no other peer {msg.to[:32]!r} in this room", ref
                    )
                target.send(relayed_message(msg, peer.id))
            case Notes():
                if peer.kind != "bot":
                    raise ProtocolError(ErrorCode.FORBIDDEN, "only bots may send notes", ref)
                self.notes[room.name] = msg.notes
                self.notes.move_to_end(room.name)
                while len(self.notes) > MAX_REMEMBERED_NOTES:
                    self.notes.popitem(last=False)
                room.broadcast(relayed_message(msg, peer.id), exclude=conn)
            case Speaking() | Caption():
                room.broadcast(relayed_message(msg, peer.id), exclude=conn)

    def _join(self, conn: Connection, msg: Join) -> None:
        if conn.room is not None:
            raise ProtocolError(
                ErrorCode.ALREADY_JOINED, "already in a room; 'leave' first", "join"
            )
        room = self.rooms.get(msg.room)
        if room is not None and len(room.members) >= self.config.max_room_size:
            raise ProtocolError(
                ErrorCode.ROOM_FULL,
                f"room {msg.room!r} is full ({self.config.max_room_size} participants)",
                "join",
            )
        if room is None:
            room = self.rooms[msg.room] = Room(msg.room)
        peer = PeerInfo(self._new_id(), msg.name, msg.kind)
        others = room.peers()
        conn.peer, conn.room = peer, room
        room.members[peer.id] = conn
        conn.send(welcome_message(peer.id, room.name, others))
        room.broadcast(peer_joined_message(peer), exclude=conn)
        log.info("%s joined as %s (%d in room)", conn.label, peer.kind, len(room.members))

    def leave(self, conn: Connection) -> None:
        """Take ``conn`` out of its room, if any, and tell the others. Idempotent."""
        room, peer = conn.room, conn.peer
        if room is None or peer is None:
            return
        log.info("%s left", conn.label)
        conn.room, conn.peer = None, None
        room.members.pop(peer.id, None)
        self._ids.discard(peer.id)
        room.broadcast(peer_left_message(peer.id))
        if not room.members:
            self.rooms.pop(room.name, None)


HUB: Final = web.AppKey("signaling_hub", Hub)


# --- HTTP handlers ---------------------------------------------------------------------------


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def _ws_handler(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT_S,
        timeout=CLOSE_TIMEOUT_S,
        # Larger than our own limit so oversize frames reach us and get a `too-large` reply
        # instead of aiohttp closing the socket; only frames far beyond it are cut off (1009).
        max_msg_size=hub.config.max_message_bytes * 4,
    )
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="This endpoint takes a WebSocket connection.\n")
    await ws.prepare(request)
    conn = Connection(ws, hub.new_limiter(), request.remote or "?", request.transport)
    hub.connections.add(conn)
    conn.start()
    try:
        async for frame in ws:
            if frame.type is WSMsgType.TEXT:
                hub.handle_text(conn, frame.data)
            elif frame.type is WSMsgType.BINARY:
                hub.handle_binary(conn)
            elif frame.type is WSMsgType.ERROR:
                log.info("%s: connection error: %s", conn.label, ws.exception())
                break
    finally:
        hub.leave(conn)
        hub.connections.discard(conn)
        await conn.finish()
        if not ws.closed:
            await ws.close()
    return ws


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def _room_page(request: web.Request) -> web.StreamResponse:
    room = request.match_info["room"]
    if not is_valid_room(room):
        return web.Response(status=400, text=f"Bad room name {room[:80]!r}. {ROOM_NAME_HELP}\n")
    return web.FileResponse(STATIC_DIR / "room.html", headers={"Cache-Control": "no-cache"})


async def _healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return web.json_response(
        {"status": "ok", "rooms": len(hub.rooms), "participants": hub.participant_count()}
    )


async def _room_info(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    name = request.match_info["room"]
    if not is_valid_room(name):
        return _json_error(400, "bad-room", ROOM_NAME_HELP)
    room = hub.rooms.get(name)
    peers = room.peers() if room else []
    return web.json_response(
        {
            "room": name,
            "participants": [p.to_json() for p in peers],
            "max_room_size": hub.config.max_room_size,
            "has_notes": name in hub.notes,
        }
    )


async def _room_notes(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    name = request.match_info["room"]
    if not is_valid_room(name):
        return _json_error(400, "bad-room", ROOM_NAME_HELP)
    notes = hub.notes.get(name)
    if notes is None:
        return _json_error(404, "no-notes", f"no meeting notes for room {name!r} yet")
    return web.json_response(notes, headers={"Cache-Control": "no-cache"})


MAX_INSTRUCTIONS_CHARS: Final = 16_000


async def _room_instructions(request: web.Request) -> web.Response:
    """``POST /api/rooms/<room>/instructions`` ``{"instructions": str}``: new instructions for
    the room's bots (a speech-to-speech bot applies them to its live session), relayed as an
    ``instructions`` message ``{"type", "from": "http", "text"}``."""
    hub = request.app[HUB]
    name = request.match_info["room"]
    if not is_valid_room(name):
        return _json_error(400, "bad-room", ROOM_NAME_HELP)
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _json_error(400, "bad-json", "send a JSON object {\"instructions\": \"...\"}")
    text = body.get("instructions") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_INSTRUCTIONS_CHARS:
        return _json_error(400, "bad-message", "'instructions' must be a non-empty string of "
                           f"at most {MAX_INSTRUCTIONS_CHARS} characters")
    room = hub.rooms.get(name)
    bots = [c for c in room.members.values() if c.peer and c.peer.kind == "bot"] if room else []
    if not bots:
        return _json_error(404, "no-bot", f"no bot is in room {name!r} to take instructions")
    message: dict[str, object] = {"type": "instructions", "from": "http", "text": text}
    for conn in bots:
        conn.send(message)
    return web.json_response({"room": name, "delivered": len(bots)}, status=202)


async def _close_all(app: web.Application) -> None:
    """On shutdown, close every WebSocket (1001) so handlers end and cleanup is prompt."""
    hub = app[HUB]
    for conn in list(hub.connections):
        conn.close_soon(WSCloseCode.GOING_AWAY, "server shutting down")


# --- public API ------------------------------------------------------------------------------


def create_app(
    max_room_size: int = 16,
    rate_per_s: float = 50,
    burst: int = 100,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    *,
    max_dropped: int = 200,
) -> web.Application:
    """Build the room server application (routes described in ``docs/protocol.md``)."""
    if max_room_size < 1 or max_message_bytes < 64:
        raise ValueError("max_room_size must be >= 1 and max_message_bytes >= 64")
    config = ServerConfig(max_room_size, float(rate_per_s), burst, max_message_bytes, max_dropped)
    RateLimiter(rate_per_s=config.rate_per_s, burst=burst, max_dropped=max_dropped)  # validates
    app = web.Application()
    app[HUB] = Hub(config)
    app.router.add_get("/", _index)
    app.router.add_get("/r/{room}", _room_page)
    app.router.add_get("/ws", _ws_handler)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/api/rooms/{room}", _room_info)
    app.router.add_get("/api/rooms/{room}/notes", _room_notes)
    app.router.add_post("/api/rooms/{room}/instructions", _room_instructions)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.on_shutdown.append(_close_all)
    # meetbot's offline OpenAI Realtime endpoint (/v1/realtime); models load on first use.
    from meetbot.realtime.server import add_realtime_routes

    add_realtime_routes(app)
    return app


@dataclass
class RunningServer:
    """A started room server; ``close()`` (or ``async with``) stops it and its connections."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL a client on this machine can reach, e.g. ``http://127.0.0.1:8080``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def room_url(self, room: str) -> str:
        return f"{self.url}/r/{quote(room, safe='')}"

    @property
    def app(self) -> web.Application:
        return self.runner.app

    async def close(self) -> None:
        await self.runner.cleanup()

    async def __aenter__(self) -> RunningServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _client_host(bound: str) -> str:
    """The address clients should dial for a socket bound to ``bound``."""
    if bound in ("0.0.0.0", ""):
        return "127.0.0.1"
    if bound == "::":
        return "[::1]"
    return f"[{bound}]" if ":" in bound else bound


async def start_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_room_size: int = 16,
    rate_per_s: float = 50,
    burst: int = 100,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    max_dropped: int = 200,
) -> RunningServer:
    """Start a room server in this event loop; ``port=0`` picks a free port.

    The listening socket is bound here (one socket, one address) rather than by aiohttp so the
    reported port is the one actually bound, even for ``port=0`` on a name like ``localhost``
    that resolves to several addresses.
    """
    app = create_app(max_room_size, rate_per_s, burst, max_message_bytes, max_dropped=max_dropped)
    sock = socket.create_server((host, port), backlog=128)
    sock.setblocking(False)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLOSE_TIMEOUT_S + 2.0)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    bound_host, bound_port = sock.getsockname()[:2]
    server = RunningServer(runner, _client_host(str(bound_host)), int(bound_port))
    log.info("room server listening on %s", server.url)
    return server


async def serve(
    host: str,
    port: int,
    *,
    max_room_size: int = 16,
    rate_per_s: float = 50,
    burst: int = 100,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    max_dropped: int = 200,
) -> None:
    """Run a room server until cancelled, then close every connection and the socket."""
    server = await start_server(
        host,
        port,
        max_room_size=max_room_size,
        rate_per_s=rate_per_s,
        burst=burst,
        max_message_bytes=max_message_bytes,
        max_dropped=max_dropped,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m signaling.server``: run a room server from the command line."""
    parser = argparse.ArgumentParser(description="meetbot room server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-room-size", type=int, default=16)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, max_room_size=args.max_room_size))


if __name__ == "__main__":
    main()
