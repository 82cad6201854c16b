"""Waking a waiting thread from a signal handler: a byte down a non-blocking pipe, never a lock.

A Python signal handler runs in the main thread between two bytecodes, possibly while that thread holds
a lock the handler then asks for: ``threading.Event.set()`` takes the lock its ``wait()`` holds around
its own check, so a SIGTERM that lands there waits forever (a supervisor that never finished its drain;
a suspended worker that never stopped). ``Waker`` and ``Flag`` take no lock: setting one is an attribute
store and a write to a pipe that cannot block, so a handler may call ``set()`` at any point.
"""

from __future__ import annotations

import contextlib
import os
import select
import weakref

__all__ = ["Flag", "Waker"]


class Waker:
    """Wakes one loop waiting in ``wait()``; ``set()`` is safe in a signal handler and from any thread."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()  # not inherited by child processes (PEP 446)
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        weakref.finalize(self, _close, self._read, self._write)  # a process may build many workers (tests)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full: a wake-up is pending anyway
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> None:
        """Until ``set()`` or ``timeout`` seconds; then forget the wake-ups so far."""
        self.ready(timeout)
        self.drain()

    def ready(self, timeout: float | None) -> bool:
        """Until ``set()`` or ``timeout`` seconds (None: no limit), keeping the wake-up: True if one is pending."""
        return bool(select.select([self._read], [], [], timeout)[0])

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass


class Flag:
    """A ``threading.Event`` (``set``, ``is_set``, ``wait``, ``clear``) whose ``set()`` a signal handler may call.

    Once set it stays set, and every ``wait()`` returns at once, in any number of threads, until ``clear()``.
    """

    def __init__(self) -> None:
        self._set = False
        self._waker = Waker()

    def set(self) -> None:
        self._set = True  # before the byte: a waiter that sees the byte sees the flag
        self._waker.set()

    def is_set(self) -> bool:
        return self._set

    def clear(self) -> None:
        self._set = False
        self._waker.drain()

    def wait(self, timeout: float) -> bool:
        """Until set or ``timeout`` seconds; True if set."""
        if self._set:
            return True
        self._waker.ready(timeout)  # the byte stays while set: every waiter wakes
        if not self._set:
            self._waker.drain()  # a byte left by a set() that a clear() overtook: not a reason to spin
        return self._set


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
