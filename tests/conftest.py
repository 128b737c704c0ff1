"""Shared fixtures: a real room server on loopback and helpers to read test audio."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from signaling.server import RunningServer, start_server

DATA = Path(__file__).parent / "data"


def load_wav(name: str) -> tuple[np.ndarray, int]:
    """A mono int16 test clip from tests/data and its sample rate."""
    with wave.open(str(DATA / name), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return pcm, w.getframerate()


@pytest.fixture
async def room_server() -> AsyncIterator[RunningServer]:
    server = await start_server("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.close()
