"""The brain interface: a transcribed turn in, streamed reply text out.

A brain sees every turn (so it can take notes) but only replies to addressed ones; it may also
speak on its own to keep time (``proactive``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from meetbot.events import Turn


class Brain(Protocol):
    def reply(self, turn: Turn) -> AsyncIterator[str]:
        """Yield the reply as text fragments (may yield nothing: no reply)."""
        ...

    async def proactive(self, now: float) -> str | None:
        """Something to say unprompted at monotonic time ``now`` (a timebox reminder), or None."""
        ...
