"""A Realtime WebSocket client that reconnects, and says when it has given up.

The persona needs three things from its connection that a plain WebSocket does not give: it
must survive a dropped connection or a server restart without the meeting noticing (reconnect
with backoff and let the persona set the new session up again), it must hear promptly when the
service is gone for good (so the cascade can take over within seconds, not minutes), and
nothing the server sends may crash it (malformed events are logged and skipped).

Events go out through one writer task per connection, so they leave in the order they were
sent even when sent from synchronous callbacks, and a bounded queue keeps a stalled socket from
growing memory. What was queued for a connection that dropped is discarded: it belonged to a
session that no longer exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from meetbot.realtime import events as ev
from meetbot.realtime.events import Event, EventError, JsonObject

log = logging.getLogger(__name__)

_OUTBOX_MAX: Final = 4096
"""Events queued for the socket; a 30 s utterance is about 60 appends."""
_HEARTBEAT_S: Final = 15.0


class State(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSED = "closed"


def realtime_url(websocket_url: str, model: str | None) -> str:
    """``websocket_url`` with ``?model=`` added when it names none (as the SDK dials it)."""
    parts = urlsplit(websocket_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if model and not any(k == "model" for k, _ in query):
        query.append(("model", model))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class RealtimeClient:
    """One logical Realtime session over as many WebSocket connections as it takes.

    Callbacks (all on the event loop):
      - ``on_connected(reconnected)``: a connection is up; send ``session.update`` and context.
        Runs before any event of that connection is delivered.
      - ``on_event(event)``: one parsed server event. Exceptions are logged, never fatal.
      - ``on_disconnected()``: the connection dropped; a reconnect follows.
      - ``on_failed()``: no connection for ``give_up_after_s`` or ``attempts`` tries in a row;
        with ``give_up`` the client stops, otherwise it keeps trying at the longest backoff.
    """

    def __init__(
        self,
        url: str,
        *,
        on_event: Callable[[Event], None],
        on_connected: Callable[[bool], Awaitable[None]] | None = None,
        on_disconnected: Callable[[], None] | None = None,
        on_failed: Callable[[], None] | None = None,
        api_key: str | None = None,
        attempts: int = 4,
        give_up_after_s: float = 5.0,
        give_up: bool = True,
        connect_timeout_s: float = 3.0,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 2.0,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_failed = on_failed
        self._attempts = max(1, attempts)
        self._give_up_after_s = give_up_after_s
        self._give_up = give_up
        self._connect_timeout_s = connect_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self.state = State.IDLE
        self.connections = 0
        """Connections made so far (the first one included)."""
        self.malformed = 0
        """Server frames that were not usable events (logged and skipped)."""
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._outbox: asyncio.Queue[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self.state is State.CONNECTED

    async def wait_connected(self, within_s: float) -> bool:
        """Wait up to ``within_s`` for a connection; whether there is one."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), within_s)
        return self.connected

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="realtime")

    async def close(self) -> None:
        self.state = State.CLOSED
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def send(self, event: JsonObject) -> bool:
        """Queue ``event`` for the current connection; False when there is none (dropped)."""
        if self._outbox is None or not self.connected:
            log.debug("realtime: not connected; dropped %s", event.get("type"))
            return False
        try:
            self._outbox.put_nowait(ev.dumps(event))
        except asyncio.QueueFull:
            log.error("realtime: the socket is not draining; dropped %s", event.get("type"))
            return False
        return True

    async def drop(self) -> None:
        """Close the current connection as if the network dropped it (a reconnect follows)."""
        if self._ws is not None:
            await self._ws.close()

    # ---- the connection loop ---------------------------------------------------------------

    async def _run(self) -> None:
        self._http = aiohttp.ClientSession()
        failures = 0
        down_since = time.monotonic()
        reported = False
        while self.state is not State.CLOSED:
            self.state = State.CONNECTING if self.connections == 0 else State.RECONNECTING
            ws = await self._connect()
            if ws is None:
                failures += 1
                down_s = time.monotonic() - down_since
                if not reported and (failures >= self._attempts or down_s >= self._give_up_after_s):
                    reported = True
                    log.warning("realtime: no connection to %s after %d tries (%.1f s)",
                                self.url, failures, down_s)
                    if self._give_up:
                        self.state = State.FAILED
                        if self._on_failed is not None:
                            self._on_failed()
                        return
                    if self._on_failed is not None:
                        self._on_failed()
                delay = min(self._backoff_max_s, self._backoff_initial_s * 2 ** (failures - 1))
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                continue
            failures, reported = 0, False
            await self._serve(ws)
            down_since = time.monotonic()
            if self.state is State.CLOSED:
                return
            if self._on_disconnected is not None:
                try:
                    self._on_disconnected()
                except Exception:
                    log.exception("realtime: on_disconnected failed")

    async def _connect(self) -> aiohttp.ClientWebSocketResponse | None:
        assert self._http is not None
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            return await asyncio.wait_for(
                self._http.ws_connect(self.url, headers=headers, heartbeat=_HEARTBEAT_S,
                                      max_msg_size=ev.MAX_EVENT_BYTES),
                self._connect_timeout_s,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("realtime: could not connect to %s: %s", self.url, exc)
            return None

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Run one connection until it drops: set the session up, then read and write."""
        reconnected = self.connections > 0
        self.connections += 1
        self._ws = ws
        self._outbox = asyncio.Queue(maxsize=_OUTBOX_MAX)
        self.state = State.CONNECTED
        self._connected.set()
        log.info("realtime: connected to %s%s", self.url, " (again)" if reconnected else "")
        writer = asyncio.get_running_loop().create_task(self._write(ws, self._outbox),
                                                        name="realtime-writer")
        try:
            if self._on_connected is not None:
                await self._on_connected(reconnected)
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._deliver(msg.data)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    self.malformed += 1
                    log.warning("realtime: skipped a binary frame (%d bytes)", len(msg.data))
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    log.warning("realtime: connection error: %s", ws.exception())
                    break
        except Exception:
            log.exception("realtime: the connection failed")
        finally:
            self._connected.clear()
            if self.state is State.CONNECTED:
                self.state = State.RECONNECTING
            self._outbox = None
            self._ws = None
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if not ws.closed:
                await ws.close()
            if self.state is not State.CLOSED:
                log.warning("realtime: connection to %s lost (close code %s)", self.url,
                            ws.close_code)

    def _deliver(self, data: str) -> None:
        try:
            event = ev.parse_event(data)
        except EventError as exc:
            self.malformed += 1
            log.warning("realtime: skipped a malformed server event: %s", exc)
            return
        try:
            self._on_event(event)
        except EventError as exc:
            self.malformed += 1
            log.warning("realtime: skipped a malformed %s event: %s", event.type, exc)
        except Exception:
            self.malformed += 1
            log.exception("realtime: handling %s failed; skipped", event.type)

    @staticmethod
    async def _write(ws: aiohttp.ClientWebSocketResponse, outbox: asyncio.Queue[str]) -> None:
        try:
            while True:
                text = await outbox.get()
                await ws.send_str(text)
        except (ConnectionError, RuntimeError) as exc:
            log.info("realtime: send failed: %s", exc)
            await ws.close()
