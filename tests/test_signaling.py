"""The room server as its clients see it: a real server on loopback, real WebSockets, no mocks.

Every receive is bounded by a timeout, and "nobody else noticed" is checked with a ping barrier
(the next message after our own ping must be its pong) rather than with sleeps.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from signaling.protocol import ErrorCode, RateLimiter, Verdict
from signaling.server import RunningServer, serve, start_server

RECV_TIMEOUT_S = 2.0
WS = aiohttp.ClientWebSocketResponse
Msg = dict[str, object]


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    srv = await start_server("127.0.0.1", 0)
    try:
        yield srv
    finally:
        await srv.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def connect(http: aiohttp.ClientSession, server: RunningServer) -> WS:
    return await http.ws_connect(f"{server.url}/ws")


async def recv(ws: WS) -> Msg:
    frame = await ws.receive(timeout=RECV_TIMEOUT_S)
    assert frame.type is aiohttp.WSMsgType.TEXT, f"expected a text message, got {frame}"
    data = json.loads(frame.data)
    assert isinstance(data, dict)
    return data


async def send(ws: WS, message: object) -> None:
    await ws.send_str(json.dumps(message))


async def join(
    http: aiohttp.ClientSession,
    server: RunningServer,
    room: str,
    name: str,
    kind: str = "person",
) -> tuple[WS, Msg]:
    ws = await connect(http, server)
    await send(ws, {"type": "join", "room": room, "name": name, "kind": kind})
    welcome = await recv(ws)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


async def assert_quiet(ws: WS) -> None:
    """Nothing is waiting for ``ws``: its own ping is answered first."""
    await send(ws, {"type": "ping"})
    assert await recv(ws) == {"type": "pong"}


async def expect_error(ws: WS, code: ErrorCode, ref: str | None = None) -> Msg:
    msg = await recv(ws)
    assert msg["type"] == "error", msg
    assert msg["code"] == code.value, msg
    assert isinstance(msg["message"], str) and msg["message"], msg
    assert msg.get("ref") == ref, msg
    return msg


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, object]:
    async with http.get(url) as resp:
        return resp.status, await resp.json()


# --- joining and leaving ---------------------------------------------------------------------


async def test_join_welcome_peer_joined_and_peer_left(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    ann, welcome_a = await join(http, server, "standup", "Ann")
    assert welcome_a["room"] == "standup"
    assert welcome_a["peers"] == []
    ann_id = welcome_a["id"]
    assert isinstance(ann_id, str) and re.fullmatch(r"[0-9a-f]{8}", ann_id)

    bob, welcome_b = await join(http, server, "standup", "Bob")
    bob_id = welcome_b["id"]
    assert bob_id != ann_id
    assert welcome_b["peers"] == [{"id": ann_id, "name": "Ann", "kind": "person"}]
    assert await recv(ann) == {
        "type": "peer-joined",
        "peer": {"id": bob_id, "name": "Bob", "kind": "person"},
    }

    status, info = await get_json(http, f"{server.url}/api/rooms/standup")
    assert status == 200
    assert isinstance(info, dict)
    assert [p["name"] for p in info["participants"]] == ["Ann", "Bob"]

    # Closing the socket is a leave.
    await bob.close()
    assert await recv(ann) == {"type": "peer-left", "id": bob_id}

    # An explicit leave keeps the socket, which may join again.
    await send(ann, {"type": "leave"})
    await assert_quiet(ann)
    status, health = await get_json(http, f"{server.url}/healthz")
    assert (status, health) == (200, {"status": "ok", "rooms": 0, "participants": 0})
    await send(ann, {"type": "join", "room": "standup", "name": "Ann", "kind": "person"})
    again = await recv(ann)
    assert again["type"] == "welcome" and again["peers"] == []
    await ann.close()


async def test_rooms_are_separate(server: RunningServer, http: aiohttp.ClientSession) -> None:
    ann, _ = await join(http, server, "one", "Ann")
    _, welcome = await join(http, server, "two", "Bob")
    assert welcome["peers"] == []
    await assert_quiet(ann)  # Ann heard nothing about a join elsewhere


async def test_already_joined(server: RunningServer, http: aiohttp.ClientSession) -> None:
    ann, _ = await join(http, server, "r1", "Ann")
    await send(ann, {"type": "join", "room": "r2", "name": "Ann", "kind": "person"})
    await expect_error(ann, ErrorCode.ALREADY_JOINED, "join")
    _, info = await get_json(http, f"{server.url}/api/rooms/r1")
    assert isinstance(info, dict) and len(info["participants"]) == 1
    _, info = await get_json(http, f"{server.url}/api/rooms/r2")
    assert isinstance(info, dict) and info["participants"] == []


async def test_not_joined(server: RunningServer, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, server)
    await assert_quiet(ws)  # ping works before join
    await send(ws, {"type": "offer", "to": "abcd1234", "sdp": "v=0"})
    await expect_error(ws, ErrorCode.NOT_JOINED, "offer")
    await send(ws, {"type": "caption", "text": "hi", "final": True})
    await expect_error(ws, ErrorCode.NOT_JOINED, "caption")
    await send(ws, {"type": "leave"})
    await expect_error(ws, ErrorCode.NOT_JOINED, "leave")


async def test_room_full_and_room_frees_up(http: aiohttp.ClientSession) -> None:
    async with await start_server(max_room_size=2) as small:
        ann, wa = await join(http, small, "tiny", "Ann")
        ann_id = wa["id"]
        bob, _ = await join(http, small, "tiny", "Bob")
        cat = await connect(http, small)
        await send(cat, {"type": "join", "room": "tiny", "name": "Cat", "kind": "person"})
        await expect_error(cat, ErrorCode.ROOM_FULL, "join")
        await bob.close()
        await send(cat, {"type": "join", "room": "tiny", "name": "Cat", "kind": "person"})
        welcome = await recv(cat)
        assert welcome["type"] == "welcome"
        assert welcome["peers"] == [{"id": ann_id, "name": "Ann", "kind": "person"}]
        assert (await recv(ann))["type"] == "peer-joined"


# --- relaying --------------------------------------------------------------------------------


async def test_offer_answer_candidate_are_relayed_with_from(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    ann, wa = await join(http, server, "call", "Ann")
    bob, wb = await join(http, server, "call", "Bob")
    cat, _ = await join(http, server, "call", "Cat")
    await recv(ann), await recv(ann), await recv(bob)  # peer-joined notices
    ann_id, bob_id = wa["id"], wb["id"]

    await send(bob, {"type": "offer", "to": ann_id, "sdp": "v=0 offer"})
    assert await recv(ann) == {"type": "offer", "from": bob_id, "sdp": "v=0 offer"}
    await send(ann, {"type": "answer", "to": bob_id, "sdp": "v=0 answer"})
    assert await recv(bob) == {"type": "answer", "from": ann_id, "sdp": "v=0 answer"}
    cand = {"candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
    await send(ann, {"type": "candidate", "to": bob_id, "candidate": cand})
    assert await recv(bob) == {"type": "candidate", "from": ann_id, "candidate": cand}
    await send(ann, {"type": "candidate", "to": bob_id, "candidate": None})
    assert await recv(bob) == {"type": "candidate", "from": ann_id, "candidate": None}
    await assert_quiet(cat)  # directed messages reach only their target


async def test_speaking_and_captions_reach_the_room_but_not_the_sender(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    ann, wa = await join(http, server, "talk", "Ann")
    bob, _ = await join(http, server, "talk", "Bob")
    cat, _ = await join(http, server, "talk", "Cat")
    await recv(ann), await recv(ann), await recv(bob)
    await send(ann, {"type": "speaking", "speaking": True})
    await send(ann, {"type": "caption", "text": "hello there", "final": False})
    for other in (bob, cat):
        assert await recv(other) == {"type": "speaking", "from": wa["id"], "speaking": True}
        assert await recv(other) == {
            "type": "caption",
            "from": wa["id"],
            "text": "hello there",
            "final": False,
        }
    await assert_quiet(ann)


async def test_unknown_peer(server: RunningServer, http: aiohttp.ClientSession) -> None:
    ann, wa = await join(http, server, "here", "Ann")
    zed, elsewhere = await join(http, server, "there", "Zed")
    for to in ("nobody00", elsewhere["id"], wa["id"]):
        await send(ann, {"type": "offer", "to": to, "sdp": "v=0"})
        await expect_error(ann, ErrorCode.UNKNOWN_PEER, "offer")
    await assert_quiet(zed)  # a peer in another room is not reachable


# --- validation ------------------------------------------------------------------------------

_BIG = json.dumps({"type": "caption", "text": "a" * 70_000, "final": True})
_BIG_UTF8 = json.dumps({"type": "caption", "text": "é" * 40_000, "final": True}, ensure_ascii=False)
_E = ErrorCode

BAD_MESSAGES: list[tuple[str, str, ErrorCode, str | None]] = [
    ("not json", "{oops", _E.BAD_JSON, None),
    ("NaN is not JSON", '{"type": "ping", "x": NaN}', _E.BAD_JSON, None),
    ("deep nesting", "[" * 50_000, _E.BAD_JSON, None),
    ("array", "[1, 2]", _E.BAD_MESSAGE, None),
    ("string", '"join"', _E.BAD_MESSAGE, None),
    ("no type", "{}", _E.BAD_MESSAGE, None),
    ("numeric type", '{"type": 5}', _E.BAD_MESSAGE, None),
    ("unknown type", '{"type": "dance"}', _E.UNKNOWN_TYPE, None),
    ("unknown field", '{"type": "ping", "extra": 1}', _E.UNKNOWN_FIELD, "ping"),
    ("missing field", '{"type": "caption", "text": "hi"}', _E.BAD_MESSAGE, "caption"),
    ("text not str", '{"type": "caption", "text": 5, "final": true}', _E.BAD_MESSAGE, "caption"),
    ("final not bool", '{"type": "caption", "text": "", "final": 1}', _E.BAD_MESSAGE, "caption"),
    ("speaking as int", '{"type": "speaking", "speaking": 1}', _E.BAD_MESSAGE, "speaking"),
    ("to not str", '{"type": "offer", "to": 1, "sdp": "v=0"}', _E.BAD_MESSAGE, "offer"),
    (
        "candidate str",
        '{"type": "candidate", "to": "x", "candidate": ""}',
        _E.BAD_MESSAGE,
        "candidate",
    ),
    ("notes not object", '{"type": "notes", "notes": []}', _E.BAD_MESSAGE, "notes"),
    ("oversize", _BIG, _E.TOO_LARGE, None),
    ("oversize in UTF-8 bytes", _BIG_UTF8, _E.TOO_LARGE, None),
]


@pytest.mark.parametrize(
    ("raw", "code", "ref"),
    [case[1:] for case in BAD_MESSAGES],
    ids=[case[0] for case in BAD_MESSAGES],
)
async def test_bad_message_gets_an_error_and_disturbs_nobody(
    server: RunningServer, http: aiohttp.ClientSession, raw: str, code: ErrorCode, ref: str | None
) -> None:
    ann, _ = await join(http, server, "strict", "Ann")
    bob, _ = await join(http, server, "strict", "Bob")
    assert (await recv(ann))["type"] == "peer-joined"
    await bob.send_str(raw)
    await expect_error(bob, code, ref)
    await assert_quiet(bob)  # the sender's connection still works
    await assert_quiet(ann)  # and nobody else noticed


async def test_binary_frames_are_refused(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, server)
    await ws.send_bytes(b'{"type": "ping"}')
    await expect_error(ws, ErrorCode.BAD_MESSAGE)
    await assert_quiet(ws)


@pytest.mark.parametrize("room", ["", "a b", "x" * 65, "café", "../etc", 7])
async def test_bad_room_names(
    server: RunningServer, http: aiohttp.ClientSession, room: object
) -> None:
    ws = await connect(http, server)
    await send(ws, {"type": "join", "room": room, "name": "Ann", "kind": "person"})
    code = ErrorCode.BAD_MESSAGE if not isinstance(room, str) else ErrorCode.BAD_ROOM
    await expect_error(ws, code, "join")
    await send(ws, {"type": "join", "room": "good_room-1", "name": "Ann", "kind": "person"})
    assert (await recv(ws))["type"] == "welcome"  # a failed join leaves the socket usable


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "tab\there", "x" * 65, "\u0007bell"])
async def test_bad_display_names(
    server: RunningServer, http: aiohttp.ClientSession, name: str
) -> None:
    ws = await connect(http, server)
    await send(ws, {"type": "join", "room": "names", "name": name, "kind": "person"})
    await expect_error(ws, ErrorCode.BAD_NAME, "join")


async def test_good_display_names_and_bad_kind(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    _, welcome = await join(http, server, "names", "Zoë Ünal-李 " + "x" * 50)
    assert welcome["type"] == "welcome"
    ws = await connect(http, server)
    await send(ws, {"type": "join", "room": "names", "name": "Ann", "kind": "alien"})
    await expect_error(ws, ErrorCode.BAD_MESSAGE, "join")


# --- notes -----------------------------------------------------------------------------------

NOTES: Msg = {
    "title": "Weekly sync",
    "agenda": [
        {
            "id": "a1",
            "title": "Status",
            "timebox_s": 300,
            "status": "active",
            "started_at_wall": 1_700_000_000.0,
            "ended_at_wall": None,
        }
    ],
    "action_items": [
        {
            "id": "x1",
            "text": "Ship it",
            "owner": "Ann",
            "due_text": "Friday",
            "due_date": None,
            "status": "open",
        }
    ],
    "decisions": [{"id": "d1", "text": "Use Opus", "speaker": "Bob"}],
    "notes": [],
    "transcript": [{"speaker": "Ann", "text": "hi", "wall_time": 1_700_000_001.0}],
}


async def test_notes_from_a_person_are_forbidden(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    ann, _ = await join(http, server, "plan", "Ann")
    bob, _ = await join(http, server, "plan", "Bob")
    await recv(ann)
    await send(bob, {"type": "notes", "notes": NOTES})
    await expect_error(bob, ErrorCode.FORBIDDEN, "notes")
    await assert_quiet(ann)
    async with http.get(f"{server.url}/api/rooms/plan/notes") as resp:
        assert resp.status == 404
        body = await resp.json()
        assert body["error"] == "no-notes" and body["message"]


async def test_notes_from_a_bot_reach_the_room_and_the_endpoint(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    ann, _ = await join(http, server, "plan", "Ann")
    bot, wb = await join(http, server, "plan", "Notetaker", kind="bot")
    joined = await recv(ann)
    assert joined["peer"] == {"id": wb["id"], "name": "Notetaker", "kind": "bot"}
    await send(bot, {"type": "notes", "notes": NOTES})
    assert await recv(ann) == {"type": "notes", "from": wb["id"], "notes": NOTES}
    await assert_quiet(bot)  # not echoed

    status, body = await get_json(http, f"{server.url}/api/rooms/plan/notes")
    assert (status, body) == (200, NOTES)
    _, info = await get_json(http, f"{server.url}/api/rooms/plan")
    assert isinstance(info, dict) and info["has_notes"] is True
    assert [p["kind"] for p in info["participants"]] == ["person", "bot"]

    # The notes outlive the meeting, so they can still be downloaded afterwards.
    await bot.close()
    await ann.close()
    status, body = await get_json(http, f"{server.url}/api/rooms/plan/notes")
    assert (status, body) == (200, NOTES)


# --- rate limiting ---------------------------------------------------------------------------


async def test_flood_is_rate_limited_then_closed_while_others_carry_on(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    bob, wb = await join(http, server, "busy", "Bob")
    bob_id = wb["id"]
    flood, wf = await join(http, server, "busy", "Flood")
    assert (await recv(bob))["type"] == "peer-joined"

    for _ in range(400):  # far beyond the burst of 100 at 50/s
        await flood.send_str('{"type":"ping"}')
    pongs = limited = 0
    started = time.monotonic()
    while True:
        frame = await flood.receive(timeout=RECV_TIMEOUT_S)
        if frame.type is not aiohttp.WSMsgType.TEXT:
            break
        msg = json.loads(frame.data)
        if msg["type"] == "pong":
            pongs += 1
        else:
            assert msg["code"] == "rate-limited", msg
            limited += 1
    assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), frame
    assert flood.close_code == 1008
    assert 99 <= pongs < 200  # the burst (less the join), plus what refilled meanwhile
    assert limited > 200
    assert time.monotonic() - started < RECV_TIMEOUT_S

    # Bob only noticed that Flood left, and the room still works for him.
    assert await recv(bob) == {"type": "peer-left", "id": wf["id"]}
    await assert_quiet(bob)
    cat, wc = await join(http, server, "busy", "Cat")
    assert wc["peers"] == [{"id": bob_id, "name": "Bob", "kind": "person"}]
    assert (await recv(bob))["type"] == "peer-joined"
    await send(bob, {"type": "caption", "text": "still here", "final": True})
    assert (await recv(cat))["text"] == "still here"


async def test_a_receiver_that_never_reads_is_dropped_and_holds_nobody_up(
    http: aiohttp.ClientSession,
) -> None:
    async with await start_server(rate_per_s=100_000, burst=100_000) as srv:
        stuck, wst = await join(http, srv, "slow", "Stuck")
        reader, wr = await join(http, srv, "slow", "Reader")
        bot, wb = await join(http, srv, "slow", "Bot", kind="bot")
        big = {"type": "notes", "notes": {"title": "x" * 60_000}}
        count = 500  # ~30 MB: more than socket buffers plus the server's per-client backlog

        async def read_all() -> list[str]:
            seen: list[str] = []
            while seen.count("notes") < count:
                seen.append(str((await recv(reader))["type"]))
            return seen

        reading = asyncio.create_task(read_all())
        text = json.dumps(big)
        started = time.monotonic()
        for _ in range(count):
            await bot.send_str(text)
        # The reader got everything while Stuck read nothing: no one waited on Stuck.
        seen = await asyncio.wait_for(reading, 5)
        assert seen.count("peer-joined") == 1  # Bot's arrival
        assert seen.count("peer-left") == 1  # Stuck was dropped while the notes went by
        assert time.monotonic() - started < 5
        _, info = await get_json(http, f"{srv.url}/api/rooms/slow")
        assert isinstance(info, dict)
        assert [p["id"] for p in info["participants"]] == [wr["id"], wb["id"]]
        assert await recv(bot) == {"type": "peer-left", "id": wst["id"]}
        await assert_quiet(bot)

        # Stuck, reading at last, finds some notes and then the end of its connection.
        for _ in range(count):
            frame = await stuck.receive(timeout=RECV_TIMEOUT_S)
            if frame.type is not aiohttp.WSMsgType.TEXT:
                break
        assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), frame


def test_rate_limiter_bursts_refills_and_closes_sustained_floods() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=5, max_dropped=3, forget_s=1.0)
    assert [limiter.admit(0.0) for _ in range(5)] == [Verdict.ACCEPT] * 5
    assert limiter.admit(0.0) is Verdict.DROP
    assert limiter.admit(0.1) is Verdict.ACCEPT  # one token refilled after 0.1 s
    # A short overrun is forgiven once the drop count has leaked away...
    assert limiter.admit(1.2) is Verdict.ACCEPT
    # ...but a sustained flood is closed: the rest of the burst, 3 drops, then the 4th closes.
    verdicts = [limiter.admit(1.2) for _ in range(8)]
    assert verdicts == [Verdict.ACCEPT] * 4 + [Verdict.DROP] * 3 + [Verdict.CLOSE]


# --- HTTP ------------------------------------------------------------------------------------


async def test_start_server_reports_its_port(server: RunningServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.room_url("standup") == f"{server.url}/r/standup"


async def test_healthz_counts_rooms_and_participants(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    # Keep the sockets referenced: a collected client socket is a closed one.
    _sockets = [
        await join(http, server, "a", "Ann"),
        await join(http, server, "a", "Bob"),
        await join(http, server, "b", "Cat"),
    ]
    assert await get_json(http, f"{server.url}/healthz") == (
        200,
        {"status": "ok", "rooms": 2, "participants": 3},
    )


async def test_room_page_and_static_files_are_served(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.room_url("standup")) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        html = await resp.text()
    for element_id in (
        "name", "join", "leave", "participants", "captions", "notes",
        "agenda", "actions", "decisions", "mic-status",
    ):  # fmt: skip
        assert f'id="{element_id}"' in html, element_id
    assert '<script src="/static/room.js">' in html

    async with http.get(f"{server.url}/static/room.js") as resp:
        assert resp.status == 200
        assert "javascript" in resp.content_type
        js = await resp.text()
    for needle in ("window.meetbot", "getUserMedia", "Microphone blocked", "createAnalyser"):
        assert needle in js, needle

    async with http.get(f"{server.url}/static/room.css") as resp:
        assert resp.status == 200
    async with http.get(f"{server.url}/") as resp:
        assert resp.status == 200
        assert "/r/" in await resp.text()


async def test_bad_room_urls_are_explained(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/r/bad%20room") as resp:
        assert resp.status == 400
        assert "Room names are" in await resp.text()
    for path in ("/api/rooms/bad%20room", "/api/rooms/bad%20room/notes"):
        async with http.get(server.url + path) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == "bad-room"
    async with http.get(f"{server.url}/ws") as resp:
        assert resp.status == 400  # a plain GET is told this is a WebSocket endpoint


async def test_closing_the_server_closes_clients_promptly(http: aiohttp.ClientSession) -> None:
    srv = await start_server()
    ws, _ = await join(http, srv, "bye", "Ann")
    started = time.monotonic()
    closing = asyncio.create_task(srv.close())
    frame = await ws.receive(timeout=RECV_TIMEOUT_S)
    assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 1001  # "going away"
    await asyncio.wait_for(closing, RECV_TIMEOUT_S)
    assert time.monotonic() - started < 1.0


async def test_serve_runs_until_cancelled(http: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    task = asyncio.create_task(serve("127.0.0.1", port, max_room_size=3))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + RECV_TIMEOUT_S
    while True:
        try:
            status, info = await get_json(http, f"{url}/api/rooms/x")
            break
        except aiohttp.ClientConnectionError:
            assert time.monotonic() < deadline, "serve() never started listening"
            await asyncio.sleep(0.02)
    assert status == 200 and isinstance(info, dict) and info["max_room_size"] == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, RECV_TIMEOUT_S)
    with pytest.raises(aiohttp.ClientConnectionError):
        await get_json(http, f"{url}/healthz")
