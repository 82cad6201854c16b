"""Stopping a running job from outside it: time limits, revokes and the shutdown deadline.

A job on the main thread is stopped by SIGALRM, which also breaks blocking calls like ``sleep``;
a job on another thread gets an asynchronous exception (delivered at its next Python instruction).
"""

from __future__ import annotations

import ctypes
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from config.errors import TaskRevoked, TaskTimeout
from workers.runner import Interrupted

__all__ = ["Interrupter", "Slot", "StopReason", "stop_error"]

StopReason = type[BaseException]


@dataclass
class Slot:
    """One place a job runs: the thread, the job and its deadline."""

    index: int
    thread_ident: int = 0
    job_id: str | None = None
    deadline: float | None = None  # monotonic time of the hard time limit
    pending: StopReason | None = None
    active: bool = False
    timer: bool = False  # an interval timer runs for this slot's job (main thread, with a time limit)
    # What inspect reads (workers/control.py): the running job, since when, and the claimed jobs waiting.
    job: Any = None
    started_at: float = 0.0
    reserved: Any = ()
    lock: threading.Lock = field(default_factory=threading.Lock)


class Interrupter:
    """Raises a stop reason inside the job of a slot, only while that job's code runs."""

    def __init__(self) -> None:
        self.main_ident = threading.main_thread().ident or 0
        self.main_slot: Slot | None = None

    def install(self, main_slot: Slot | None) -> None:
        """Catch SIGALRM on the main thread (call from the main thread)."""
        self.main_slot = main_slot
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_alarm(self, signum: int, frame: object) -> None:
        slot = self.main_slot
        if slot is None or not slot.active:
            return
        reason = slot.pending or TaskTimeout
        slot.pending = None
        raise stop_error(slot, reason)

    def arm(self, slot: Slot, seconds: float | None) -> None:
        """Start the time limit of the job now starting on ``slot``."""
        slot.pending = None
        slot.active = True
        if slot.thread_ident == self.main_ident and seconds:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            slot.timer = True

    def disarm(self, slot: Slot) -> None:
        slot.active = False
        slot.deadline = None
        if slot.timer:  # a job without a time limit costs no system call
            slot.timer = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def stop(self, slot: Slot, reason: StopReason) -> bool:
        """Ask the job on ``slot`` to stop with ``reason`` (TaskTimeout, TaskRevoked or Interrupted)."""
        with slot.lock:
            if not slot.active:
                return False
            slot.pending = reason
            if slot.thread_ident == self.main_ident:
                signal.pthread_kill(self.main_ident, signal.SIGALRM)
            else:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(slot.thread_ident), ctypes.py_object(reason))
            return True


def stop_error(slot: Slot, reason: StopReason) -> BaseException:
    """The exception a stop with ``reason`` raises inside the job of ``slot``."""
    if reason is TaskTimeout:
        return TaskTimeout(f"job {slot.job_id} passed its time limit and was stopped")
    return reason(f"job {slot.job_id} was stopped")


REASONS = {"timeout": TaskTimeout, "revoked": TaskRevoked, "interrupted": Interrupted}
