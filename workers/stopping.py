"""The bottom layer of ``workers.Worker``: its state, stop requests and the stopping of running jobs.

A stop request (SIGTERM, SIGINT, RQ's shutdown command, ``max_jobs``) ends the claiming and starts the
shutdown deadline; the running jobs are stopped by the interrupter (workers/interrupts.py) on their slots,
by maintenance at the deadline, or by RQ's stop-job and kill-horse commands and taskrail's revokes. The
layers above: the claim/settle exchange (workers/exchange.py), the inline run loop (workers/inline.py)
and the start and end of ``work()`` (workers/worker.py).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from rq import Worker as RQWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from config.errors import ConfigError, TaskRevoked
from config.settings import Settings, load_settings
from tasks.core.protocol import epoch_text
from workers.aio import AsyncInterrupter
from workers.exitcodes import RET_CONFIG, RET_RECYCLE
from workers.interrupts import Interrupter, Slot
from workers.runner import UNREACHABLE, HorseKilled, Interrupted, JobStopped
from workers.waker import Flag

__all__ = ["StoppableWorker"]

log = logging.getLogger("taskrail.worker")


def _settings_or_exit() -> Settings:
    """The settings from the environment, or exit RET_CONFIG with the one-line reason (no traceback)."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"taskrail: {exc}", file=sys.stderr)
        raise SystemExit(RET_CONFIG) from None


class StoppableWorker(RQWorker):
    """An RQ worker with taskrail's settings, job slots and stop requests; ``workers.Worker`` runs the jobs."""

    def __init__(self, queues: Any, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer  # taskrail jobs are JSON, never pickle
        super().__init__(queues, *args, **kwargs)
        self.settings = settings or _settings_or_exit()
        self.interrupter = AsyncInterrupter() if self.settings.pool == "asyncio" else Interrupter()
        self.slots = [Slot(i) for i in range(self.settings.concurrency)]
        self.jobs_done = 0
        self.max_jobs: int | None = None  # RQ's --max-jobs, set by work()
        self.burst = False  # set by work()
        self.suspended = False  # set by maintenance while RQ's suspension key (`rq suspend`) exists
        self._stop = Flag()  # set by request_stop, the signal handler: never a threading.Event (workers/waker.py)
        self._notices: deque[tuple[int, str]] = deque()  # what request_stop would log: maintenance logs it
        self._exit_code = 0
        self.shutdown_deadline: float | None = None  # monotonic; set by the first stop signal
        self._stop_asked_at = 0.0  # epoch; set by the first stop signal, written by record_stop
        self._stop_recorded = False
        self.started_at = time.time()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def may_start_claimed(self) -> bool:
        """Whether a job a claim just brought may start: always before a stop; after one (the server claimed the
        job before it knew of the stop), until the shutdown deadline."""
        return not self._stop.is_set() or self.shutdown_deadline is not None

    def request_stop(self, signum: int | None = None, frame: Any = None) -> None:
        """First signal: stop taking jobs and drain until the deadline. Second: stop running jobs now.

        It is the SIGTERM and SIGINT handler, run on the main thread between any two bytecodes, maybe while
        that thread holds a lock: so it takes none and logs nothing (the logging module's own advice). The
        maintenance thread logs the request and, past the deadline, requeues the running jobs (0.1 s ticks).
        """
        if self._stop.is_set():
            self._notices.append((logging.WARNING, "second stop signal: interrupting running jobs now"))
            self.shutdown_deadline = time.monotonic()  # maintenance's next tick interrupts them
            return
        timeout_s = self.settings.shutdown_timeout_s
        self._notices.append((logging.INFO, f"stop requested: finishing running jobs (up to {timeout_s}s)"))
        self.shutdown_deadline = time.monotonic() + timeout_s
        self._stop_asked_at = time.time()
        self._stop.set()

    def record_stop(self) -> None:
        """Write a stop request to RQ's ``shutdown_requested_date`` (once): claim.lua claims nothing for a worker
        that has it, a claim queued behind this worker's blocking wait included. So a job is either claimed
        before the server knew of the stop, and runs, or stays queued; never shown started, then handed back.
        Called by maintenance's tick and the shutdown command's thread, never by the signal handler."""
        if self._stop_recorded or not self._stop.is_set():
            return
        try:
            self.connection.hset(self.key, "shutdown_requested_date", epoch_text(self._stop_asked_at))
        except UNREACHABLE as exc:  # the next tick tries again
            log.warning("worker %s: could not record the stop request (%s)", self.name, exc)
            return
        self._stop_recorded = True

    def log_notices(self) -> None:
        """Log what ``request_stop`` noted (on the maintenance thread, never in a signal handler)."""
        while self._notices:
            level, text = self._notices.popleft()
            log.log(level, "worker %s: %s", self.name, text)

    def recycle(self, reason: str) -> None:
        """Stop gracefully and exit with RET_RECYCLE so the supervisor starts a fresh process."""
        if not self._stop.is_set():
            log.info("worker %s recycling: %s", self.name, reason)
            self._exit_code = RET_RECYCLE
            self.request_stop()

    def interrupt_all(self) -> None:
        """Stop every running job; each goes back to the front of its queue."""
        for slot in self.slots:
            self.interrupter.stop(slot, Interrupted)

    def stop_job(self, job_id: str) -> bool:
        """Stop the running job ``job_id`` (RQ's stop-job command); False when no slot runs it."""
        return any([self.interrupter.stop(slot, JobStopped) for slot in self.slots if slot.job_id == job_id])

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """RQ's kill-horse: stop every running job (with ``isolation: fork``, kill its work-horse); they fail."""
        for slot in self.slots:
            self.interrupter.stop(slot, HorseKilled)

    def revoke_running(self, job_ids: set[str]) -> None:
        for slot in self.slots:
            if slot.job_id in job_ids:
                self.interrupter.stop(slot, TaskRevoked)

    @contextlib.contextmanager
    def _callback_limit(self, seconds: int) -> Iterator[None]:
        """A callback's timeout, enforced like a job's on this thread's slot (TaskTimeout inside it)."""
        ident = threading.get_ident()
        slot = next((s for s in self.slots if s.thread_ident == ident), None)
        if slot is None or seconds <= 0:
            yield
            return
        slot.deadline = time.monotonic() + seconds
        self.interrupter.arm(slot, seconds)
        try:
            yield
        finally:
            self.interrupter.disarm(slot)

    def get_current_job_id(self) -> str | None:
        """The id of a job this worker runs now (the first busy slot's; else that of an execution RQ's own
        methods prepared, as ``prepare_execution``), None when idle; read in memory."""
        running = self._running_id()
        return running if running is not None else super().get_current_job_id()

    def _running_id(self) -> str | None:
        return next((slot.job_id for slot in self.slots if slot.job_id), None)

    def get_current_job(self) -> Job | None:
        job_id = self._running_id()
        if job_id is None:
            return super().get_current_job()
        try:
            return self.job_class.fetch(job_id, connection=self.connection, serializer=self.serializer)
        except NoSuchJobError:
            return None
