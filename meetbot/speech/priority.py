"""Model inference runs at a lower CPU priority than the event loop.

On a small machine, speech models use every core; at equal priority the thread running the
event loop then waits for a time slice and outgoing audio frames come late. Inference threads
(and the native thread pools they start, which inherit the priority of the thread that creates
them) run ``BACKGROUND_NICE`` steps nicer, so the loop gets the CPU whenever it needs it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKGROUND_NICE = 10


def lower_thread_priority() -> None:
    """Make the calling thread (and threads it creates later) yield to the event loop."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (OSError, AttributeError) as exc:  # not Linux, or not permitted: run as is
        log.debug("cannot lower thread priority: %s", exc)


def run_in_background_thread(fn: Callable[[], T], name: str) -> T:
    """Run ``fn`` on a fresh low-priority thread and wait for it.

    Used for loading models: the native thread pools a model creates while loading inherit
    this thread's priority, and the caller's (pooled) thread keeps its own.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        lower_thread_priority()
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller
            error.append(exc)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
