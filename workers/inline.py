"""The inline run loop of ``workers.Worker`` (``concurrency`` 1): the thread of ``work()`` takes jobs from its
claimed batch and runs them in this process (or, with ``isolation: fork``, in a work-horse), then hands the
outcomes to the next exchange. ``_run`` runs one job on a slot, here and for the slot threads of the threads
mode (workers/threads.py); ``pool: asyncio`` runs workers/aio.py instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from typing import Any

from config.errors import TaskRevoked
from tasks.core import keys
from workers.callbacks import has_success_callback, run_success_callback
from workers.exchange import ExchangingWorker
from workers.flows import resolve_arguments
from workers.interrupts import Slot
from workers.isolation import run_forked
from workers.runner import (
    ClaimedJob,
    HorseKilled,
    Interrupted,
    JobStopped,
    Outcome,
    job_error,
    operator_stop,
    rq_outcome,
    run_job,
)
from workers.sentry import capture_failure

__all__ = ["InlineWorker"]

log = logging.getLogger("taskrail.worker")

FLUSH_AFTER_S = 0.05  # settle finished jobs at least this often while a batch runs
TARGET_BATCH_S = 0.02  # claim about this much work at once, judged by recent job durations


class InlineWorker(ExchangingWorker):
    """Runs claimed jobs in this process, one slot per thread."""

    _avg_job_s = TARGET_BATCH_S  # unknown durations: claim one job at a time until measured

    def _loop(self, slot: Slot) -> None:
        slot.thread_ident = threading.get_ident()
        conn = self.connection
        loop = asyncio.new_event_loop()
        local: deque[ClaimedJob] = deque()
        slot.reserved = local  # read by inspect reserved
        pending: list[Outcome] = []
        first_pending = 0.0
        try:
            while not self._stop.is_set():
                if not local and self.suspended:
                    self._exchange(conn, pending, 0)  # settle what ran; claim nothing
                    pending = []
                    if self.burst:
                        log.info("worker %s: suspended in burst mode, exiting", self.name)
                        break
                    self._wait_suspended()
                    continue
                if not local:
                    rows = self._exchange(conn, pending, self._batch_size())
                    pending = []
                    if not rows:
                        if self.burst and self._queues_empty(conn):
                            break
                        rows = self._wait_for_work(conn, self._batch_size())  # the wait claims too
                        if not rows:
                            continue
                    local.extend(rows)
                    # The claim's first job starts now, even if a stop came meanwhile: the server claimed it before
                    # it knew of the stop (claim.lua), and RQ shows it started. The rest goes back at the loop's top.
                    if not self.may_start_claimed:
                        break
                job = local.popleft()
                if not pending:
                    first_pending = time.monotonic()
                pending.append(self._run(slot, job, loop))
                if time.monotonic() - first_pending > FLUSH_AFTER_S:
                    self._exchange(conn, pending, 0)
                    pending = []
        finally:
            # Claimed but never started: back to the front of their queues, in their order.
            pending += [Outcome(job, "requeue", exc_type="requeued") for job in reversed(local)]
            if pending:
                self._exchange(conn, pending, 0, retry_until_stopped=False)
            loop.close()

    def _run(self, slot: Slot, job: ClaimedJob, loop: asyncio.AbstractEventLoop) -> Outcome:
        slot.job, slot.started_at, slot.job_id = job, time.time(), job.id  # job first: inspect reads by job_id
        started = slot.started_at
        try:
            limit = job.timeout if job.timeout and job.timeout > 0 else None
            slot.deadline = time.monotonic() + limit if limit else None
            self.interrupter.arm(slot, limit)
            if self.settings.isolation == "fork":
                run = functools.partial(run_job, job, self._write_progress, None, self._resolve_flow, self.connection)
                outcome = run_forked(job, run, self.settings.max_stalled)
            else:
                outcome = run_job(job, self._write_progress, loop, self._resolve_flow, self.connection)
        except (Interrupted, TaskRevoked) as exc:  # a stop that landed just outside the task's code
            outcome = Outcome(job, "requeue" if isinstance(exc, Interrupted) else "revoked", ttl=job.failure_ttl)
        except (JobStopped, HorseKilled) as stop:
            outcome = operator_stop(job, "", stop, 0.0)
        except Exception as exc:  # any other per-job step that broke: this job fails, the worker carries on
            log.exception("job %s could not be run", job.id)
            outcome = job_error(job, exc)
        finally:
            self.interrupter.disarm(slot)
            slot.job_id = None
        if job.callbacks and has_success_callback(outcome):  # RQ's on_success, before the success is recorded
            outcome = run_success_callback(self.connection, outcome, self._callback_limit)
        return self._ran(outcome, started)

    def _ran(self, outcome: Outcome, started: float) -> Outcome:
        """Account for a job that ran (or could not): statistics, failure report, max_jobs; the outcome to settle."""
        job = outcome.job
        if job.callbacks:  # RQ's callbacks, Retry or Repeat: only the jobs that have them pay for them
            outcome = rq_outcome(outcome)
        outcome.started_at, outcome.ended_at = started, time.time()
        self.jobs_done += 1
        self._count(outcome)
        # Slow to trust short jobs, quick to notice a long one: a long job shrinks the next claim at once.
        self._avg_job_s = max(outcome.duration_s, 0.9 * self._avg_job_s + 0.1 * outcome.duration_s)
        if outcome.kind == "fail":
            try:
                self.report_failure(job, outcome)
            except Exception:  # a failing report hook must not take the worker down
                log.exception("reporting the failure of job %s failed", job.id)
        if self.max_jobs and self.jobs_done >= self.max_jobs:
            if not self._stop.is_set():
                log.info("worker %s: finished executing %d jobs, quitting", self.name, self.jobs_done)
                self.request_stop()
        elif self.settings.max_jobs and self.jobs_done >= self.settings.max_jobs:
            self.recycle(f"reached max_jobs={self.settings.max_jobs}")
        return outcome

    def _count(self, outcome: Outcome) -> None:
        """RQ's worker statistics, in memory (finish.lua counts them in the worker's hash)."""
        if outcome.kind in ("ok", "rq_repeat"):
            self.successful_job_count += 1
        elif outcome.kind not in ("requeue", "revoked"):  # fail, stopped and every retry, as RQ counts them
            self.failed_job_count += 1
        if outcome.kind not in ("requeue", "revoked"):
            self.total_working_time += outcome.duration_s

    def _batch_size(self) -> int:
        if self._stop.is_set():
            return 0
        fitting = int(TARGET_BATCH_S / max(self._avg_job_s, 1e-6))
        limits = [n - self.jobs_done for n in (self.max_jobs, self.settings.max_jobs) if n]
        if limits:  # claim no job that max_jobs would hand back unrun
            fitting = min(fitting, *limits)
        return max(1, min(self.settings.max_batch, fitting))

    def _resolve_flow(
        self, job: ClaimedJob, args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        return resolve_arguments(self.connection, job.id, job.flow, args, kwargs)

    def _write_progress(self, job_id: str, percent: float, note: str | None) -> None:
        job_key = keys.JOB.format(job_id)
        queue = self.connection.hget(job_key, "origin")
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.hset(job_key, mapping={"tr_progress": percent, "tr_progress_note": note or ""})
            if queue:
                pipe.xadd(keys.EVENTS.format(queue.decode()), {"event": "progress", "job": job_id, "percent": percent},
                          maxlen=self.settings.events_maxlen, approximate=True)  # fmt: skip
            pipe.execute()

    def report_failure(self, job: ClaimedJob, outcome: Outcome) -> None:
        """Hook for error reporting (Sentry); logs the failure."""
        log.warning("job %s (%s) failed: %s: %s", job.id, outcome.task, outcome.exc_type, outcome.exc_message)
        capture_failure(job, outcome)
