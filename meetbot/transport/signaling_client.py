"""Client side of the room signaling protocol (docs/protocol.md) over one WebSocket."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from meetbot.events import Participant

log = logging.getLogger(__name__)

_ROOM_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SignalingError(RuntimeError):
    """The room server refused us or the room URL is not a room."""


@dataclass(frozen=True)
class RoomAddress:
    """Where a room lives: the page URL a person opens and the WebSocket a bot uses."""

    page_url: str
    ws_url: str
    room: str


def parse_room_url(url: str) -> RoomAddress:
    """``http://HOST:PORT/r/<room>`` -> the room's WebSocket address and name."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SignalingError(f"room URL must start with http:// or https://, got {url!r}")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) != 2 or segments[0] != "r" or not _ROOM_RE.match(segments[1]):
        raise SignalingError(
            f"not a room URL: {url!r} (expected http://HOST:PORT/r/<room>, room made of "
            "letters, digits, '-' and '_')"
        )
    scheme = "wss" if parts.scheme == "https" else "ws"
    ws_url = urlunsplit((scheme, parts.netloc, "/ws", "", ""))
    return RoomAddress(page_url=url, ws_url=ws_url, room=segments[1])


class SignalingClient:
    """One participant's WebSocket to the room server."""

    def __init__(self, address: RoomAddress, name: str, kind: str) -> None:
        self.address = address
        self.name = name
        self.kind = kind
        self.id = ""
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> list[Participant]:
        """Open the socket and join; returns the participants already in the room."""
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await self._session.ws_connect(self.address.ws_url, heartbeat=20)
            await self.send(
                {"type": "join", "room": self.address.room, "name": self.name, "kind": self.kind}
            )
            msg = await self._ws.receive_json(timeout=10)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            await self.close()
            raise SignalingError(f"cannot join {self.address.page_url}: {exc}") from exc
        if msg.get("type") == "error":
            await self.close()
            raise SignalingError(f"room server refused to join: {msg.get('message')}")
        if msg.get("type") != "welcome":
            await self.close()
            raise SignalingError(f"unexpected first message from room server: {msg!r}")
        self.id = str(msg["id"])
        return [participant_from(p) for p in msg.get("peers", [])]

    async def send(self, message: dict[str, Any]) -> None:
        if self._ws is None or self._ws.closed:
            return
        try:
            await self._ws.send_str(json.dumps(message))
        except (aiohttp.ClientError, ConnectionResetError) as exc:
            log.warning("signaling send failed: %s", exc)

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Incoming messages until the socket closes."""
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            try:
                data = json.loads(msg.data)
            except ValueError:
                log.warning("room server sent invalid JSON; skipped")
                continue
            if isinstance(data, dict):
                yield data

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            try:
                await self._ws.send_str(json.dumps({"type": "leave"}))
            except (aiohttp.ClientError, ConnectionResetError):
                pass
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        self._ws = None
        self._session = None


def participant_from(data: dict[str, Any]) -> Participant:
    return Participant(
        id=str(data["id"]), name=str(data.get("name", "?")), kind=str(data.get("kind", "person"))
    )
