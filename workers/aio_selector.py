"""The event loop of ``pool: asyncio`` (workers/aio.py), with timers that fire to the microsecond.

asyncio's selector on Linux waits with ``epoll_wait``, whose timeout is whole milliseconds: every wait
is rounded up to the next one, so a job's ``await asyncio.sleep(0.02)`` takes about 20.9 ms, and a
worker whose jobs mostly wait runs about 5% fewer of them. ``PreciseSelector`` waits with
``select()`` (a timeout in microseconds) on the epoll descriptor itself, which is readable when an
event is ready, then collects the events with a non-blocking ``epoll_wait``. A descriptor number
``select()`` cannot take (``FD_SETSIZE`` and up: a process with over a thousand files open) falls
back to the rounded wait.
"""

from __future__ import annotations

import asyncio
import select
import selectors
import sys

__all__ = ["FD_SETSIZE", "new_event_loop"]

FD_SETSIZE = 1024  # glibc's: select() takes no descriptor numbered this or higher

if sys.platform == "linux":

    class PreciseSelector(selectors.EpollSelector):
        """An epoll selector whose timed waits are not rounded up to the millisecond."""

        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            if timeout is not None and timeout > 0 and self.fileno() < FD_SETSIZE:
                readable, _, _ = select.select([self.fileno()], [], [], timeout)
                if not readable:
                    return []
                timeout = 0  # events are ready: collect them without waiting
            return super().select(timeout)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop on ``PreciseSelector`` (asyncio's default loop where epoll does not exist)."""
    if sys.platform == "linux":
        return asyncio.SelectorEventLoop(PreciseSelector())
    return asyncio.new_event_loop()
