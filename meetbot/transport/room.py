"""Being in a room: one WebRTC peer connection per remote participant (a mesh).

``RoomConnection`` owns the signaling socket and every peer connection, follows joins and
leaves, and tells its owner about remote audio tracks and departures. It is used by the bot and
by simulated participants alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket
from aiortc.sdp import candidate_from_sdp

from meetbot.events import Participant
from meetbot.transport.signaling_client import (
    RoomAddress,
    SignalingClient,
    participant_from,
)

log = logging.getLogger(__name__)

TrackFactory = Callable[[Participant], MediaStreamTrack]
TrackHandler = Callable[[Participant, MediaStreamTrack], None]
PeerHandler = Callable[[Participant], Awaitable[None]]
MessageHandler = Callable[[dict[str, Any]], None]


_STREAM_RESTART = 100
"""A packet this far behind the newest is a restarted stream, not a late one (aiortc's own
``MAX_MISORDER``)."""


class ArrivalBuffer(JitterBuffer):
    """An audio "jitter buffer" that holds nothing: each packet is released as it arrives.

    aiortc releases an audio frame only once the next one has arrived (a frame may span
    several packets and it cannot know it is complete before), and by default only after 4
    more (80 ms) for smooth playout. An Opus frame is always one packet, and a listener that
    plays nothing gains nothing from waiting: every frame held is time added to noticing that
    someone stopped talking. A duplicate, or a packet older than one already released, is
    dropped (a playing receiver would have had to drop it too).
    """

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self._newest: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        newest = self._newest
        if newest is not None:
            behind = (newest - packet.sequence_number) % 0x10000
            if behind < _STREAM_RESTART:  # a duplicate (0) or late: already past it
                return False, None
        self._newest = packet.sequence_number
        data: bytes = packet._data  # type: ignore[attr-defined]  # set by the receiver
        return False, JitterFrame(data=data, timestamp=packet.timestamp)


def set_receive_buffer(pc: RTCPeerConnection, track: MediaStreamTrack, frames: int) -> None:
    """Make the jitter buffer of ``track``'s receiver hold ``frames`` frames (0: none at all,
    see :class:`ArrivalBuffer`).

    aiortc holds 4 audio frames (80 ms) before it releases one, which smooths playout for a
    listener who plays the sound. aiortc has no setting for it, so the receiver's buffer is
    replaced before the first packet arrives (the ``track`` event comes with the remote
    description, before media flows).
    """
    buffer = ArrivalBuffer() if frames == 0 else JitterBuffer(capacity=16, prefetch=frames)
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if receiver.track is track:
            receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]
            return


class PeerLink:
    """The peer connection to one remote participant and the track we send on it."""

    def __init__(self, participant: Participant, pc: RTCPeerConnection) -> None:
        self.participant = participant
        self.pc = pc
        self.sent_track: MediaStreamTrack | None = None

    async def close(self) -> None:
        if self.sent_track is not None:
            self.sent_track.stop()
        await self.pc.close()


class RoomConnection:
    """Joins a room and keeps one ``PeerLink`` per remote participant."""

    def __init__(
        self,
        address: RoomAddress,
        name: str,
        kind: str,
        make_track: TrackFactory,
        on_track: TrackHandler,
        on_peer_left: PeerHandler | None = None,
        on_message: MessageHandler | None = None,
        receive_buffer_frames: int | None = None,
    ) -> None:
        """``receive_buffer_frames``: how many frames aiortc's jitter buffer holds on the
        incoming audio before it releases one (None: aiortc's default of 4, 80 ms)."""
        self.address = address
        self._receive_buffer_frames = receive_buffer_frames
        self.signaling = SignalingClient(address, name, kind)
        self._make_track = make_track
        self._on_track = on_track
        self._on_peer_left = on_peer_left
        self._on_message = on_message
        self.participants: dict[str, Participant] = {}
        self.links: dict[str, PeerLink] = {}
        self._task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @property
    def id(self) -> str:
        return self.signaling.id

    async def join(self) -> None:
        """Join and offer to everyone already there (the newcomer offers)."""
        peers = await self.signaling.connect()
        for peer in peers:
            self.participants[peer.id] = peer
        self._task = asyncio.get_running_loop().create_task(
            self._serve(peers), name=f"room:{self.signaling.name}"
        )

    async def send(self, message: dict[str, Any]) -> None:
        await self.signaling.send(message)

    async def leave(self) -> None:
        """Leave the room and close every peer connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.signaling.close()
        for peer_id in list(self.links):
            await self._drop(peer_id, notify=True)
        self.closed.set()

    # ---- signaling loop --------------------------------------------------------------------

    async def _serve(self, initial_peers: list[Participant]) -> None:
        try:
            for peer in initial_peers:
                await self._offer_to(peer)
            async for msg in self.signaling.messages():
                await self._handle(msg)
            log.info("%s: room server closed the connection", self.signaling.name)
        finally:
            self.closed.set()

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "peer-joined":
            peer = participant_from(msg["peer"])
            self.participants[peer.id] = peer
            log.info("%s: %s joined", self.signaling.name, peer.name)
        elif kind == "peer-left":
            peer_id = str(msg.get("id"))
            await self._drop(peer_id, notify=True)
            self.participants.pop(peer_id, None)
        elif kind == "offer":
            await self._answer(str(msg.get("from")), str(msg.get("sdp", "")))
        elif kind == "answer":
            await self._accept_answer(str(msg.get("from")), str(msg.get("sdp", "")))
        elif kind == "candidate":
            await self._add_candidate(str(msg.get("from")), msg.get("candidate"))
        elif kind == "error":
            log.warning("%s: room server error %s: %s", self.signaling.name, msg.get("code"),
                        msg.get("message"))
        elif self._on_message is not None:
            self._on_message(msg)

    # ---- peer connections ------------------------------------------------------------------

    def _new_link(self, peer: Participant) -> PeerLink:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        link = PeerLink(peer, pc)
        self.links[peer.id] = link

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                if self._receive_buffer_frames is not None:
                    set_receive_buffer(pc, track, self._receive_buffer_frames)
                self._on_track(peer, track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "failed" and self.links.get(peer.id) is link:
                log.warning("%s: connection to %s failed", self.signaling.name, peer.name)
                await self._drop(peer.id, notify=True)

        link.sent_track = self._make_track(peer)
        return link

    async def _offer_to(self, peer: Participant) -> None:
        link = self._new_link(peer)
        assert link.sent_track is not None
        link.pc.addTrack(link.sent_track)
        await link.pc.setLocalDescription(await link.pc.createOffer())
        await self.send({"type": "offer", "to": peer.id, "sdp": link.pc.localDescription.sdp})

    async def _answer(self, peer_id: str, sdp: str) -> None:
        peer = self.participants.get(peer_id)
        if peer is None:
            log.warning("%s: offer from unknown peer %s ignored", self.signaling.name, peer_id)
            return
        if peer_id in self.links:
            await self._drop(peer_id, notify=False)  # a renegotiation from scratch
        link = self._new_link(peer)
        try:
            await link.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            assert link.sent_track is not None
            link.pc.addTrack(link.sent_track)
            await link.pc.setLocalDescription(await link.pc.createAnswer())
        except Exception as exc:  # aiortc raises several types for a broken SDP
            log.error("%s: bad offer from %s: %s", self.signaling.name, peer.name, exc)
            await self._drop(peer_id, notify=False)
            return
        await self.send({"type": "answer", "to": peer_id, "sdp": link.pc.localDescription.sdp})

    async def _accept_answer(self, peer_id: str, sdp: str) -> None:
        link = self.links.get(peer_id)
        if link is None:
            log.warning("%s: answer from %s without an offer ignored", self.signaling.name, peer_id)
            return
        try:
            await link.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            log.error("%s: bad answer from %s: %s", self.signaling.name,
                      link.participant.name, exc)
            await self._drop(peer_id, notify=False)

    async def _add_candidate(self, peer_id: str, data: Any) -> None:
        link = self.links.get(peer_id)
        if link is None or not isinstance(data, dict) or not data.get("candidate"):
            return
        try:
            line = str(data["candidate"])
            candidate = candidate_from_sdp(line.split(":", 1)[1] if ":" in line else line)
            candidate.sdpMid = data.get("sdpMid")
            candidate.sdpMLineIndex = data.get("sdpMLineIndex")
            await link.pc.addIceCandidate(candidate)
        except Exception as exc:
            log.warning("%s: bad ICE candidate from %s: %s", self.signaling.name, peer_id, exc)

    async def _drop(self, peer_id: str, notify: bool) -> None:
        link = self.links.pop(peer_id, None)
        if link is None:
            return
        await link.close()
        if notify and self._on_peer_left is not None:
            await self._on_peer_left(link.participant)
