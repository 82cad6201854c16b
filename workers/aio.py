"""``pool: asyncio`` (``TASKRAIL_POOL=asyncio``): one event loop per worker process runs up to
``concurrency`` jobs at once, and all of them share one claim/settle stream.

- ``async def`` tasks run as asyncio tasks on the loop (workers/aio_jobs.py); plain functions run in a
  bounded thread pool (``POOL_THREADS``), so a blocking call never stalls the loop.
- The stream: one coroutine claims jobs up to the free capacity plus a prefetch of ``max_batch``
  (claim.lua, one round trip for the whole batch) and settles finished jobs in batches with the next
  claim, or at least every ``FLUSH_AFTER_S`` (finish.lua, fenced by each claim's token). Round trips run
  on one I/O thread, so the loop keeps running jobs meanwhile. 1,000 jobs in flight cost memory (an
  asyncio task each), not round trips per job.
- When a claim comes back short, a wait thread blocks on the wake-up lists with a claim queued behind the
  wait (one round trip: the server runs it as the wait ends) and hands the rows to the loop. Once the worker
  has recorded a stop, the server claims nothing for it; a claim that came before starts on the free slots,
  and the rest of it is handed back before the loop ends. The loop waits on workers/aio_selector.py, whose
  timers fire to the microsecond.
- Every stop goes through the worker's interrupter as in the other modes (workers/aio_jobs.py): time
  limits and the shutdown deadline (the maintenance thread), revokes, ``stop-job`` and ``kill-horse``.
- Heartbeats, recovery, events, statistics and RQ's callbacks are the worker's own code, unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from config.errors import TaskRevoked
from workers.aio_jobs import AsyncInterrupter, cancelled_stop, is_async, run_async
from workers.aio_selector import new_event_loop
from workers.callbacks import has_success_callback, run_success_callback
from workers.interrupts import Slot
from workers.runner import (
    ClaimedJob,
    HorseKilled,
    Interrupted,
    JobStopped,
    Outcome,
    job_error,
    operator_stop,
    prepare_job,
    run_prepared,
)

if TYPE_CHECKING:
    from workers.worker import Worker

__all__ = ["AsyncInterrupter", "run_asyncio"]

log = logging.getLogger("taskrail.worker")

POOL_THREADS = 32  # plain functions running at once in one worker process; more wait for a thread
FLUSH_AFTER_S = 0.05  # settle finished jobs at least this often, as the other modes do
NAP_S = 0.05  # longest wait of the stream between looks at the stop and suspension flags
T = TypeVar("T")


def run_asyncio(worker: Worker) -> None:
    """Run ``worker``'s jobs on a new event loop until it stops (the body of ``Worker.work``)."""
    loop = new_event_loop()  # timers to the microsecond: a 20 ms await takes 20 ms, not 21
    interrupter = worker.interrupter
    assert isinstance(interrupter, AsyncInterrupter), "pool asyncio sets an AsyncInterrupter in Worker.__init__"
    interrupter.loop = loop
    stream = Stream(worker, interrupter, loop)
    try:
        loop.run_until_complete(stream.run())
    finally:
        stream.close()
        loop.close()


class Stream:
    """The one claim/settle stream of a worker process in ``pool: asyncio``, and the jobs it started."""

    def __init__(self, worker: Worker, interrupter: AsyncInterrupter, loop: asyncio.AbstractEventLoop) -> None:
        self.worker = worker
        self.loop = loop
        self.tasks = interrupter.tasks  # slot index -> running job's asyncio task
        self.free: deque[Slot] = deque(worker.slots)
        self.ready: deque[ClaimedJob] = deque()  # claimed, waiting for a free slot
        worker.slots[0].reserved = self.ready  # what `taskrail inspect reserved` lists
        self.prefetch = min(worker.settings.max_batch, len(worker.slots))
        self.pending: list[Outcome] = []
        self.first_pending = 0.0
        self.empty = False  # the last claim came back short: wait for the wake-up list before claiming again
        self.waiter: asyncio.Future[list[ClaimedJob] | None] | None = None  # the wait thread's wait, then claim
        self.wake = asyncio.Event()
        threads = min(POOL_THREADS, len(worker.slots))
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="taskrail-pool")
        self.io = ThreadPoolExecutor(1, thread_name_prefix="taskrail-stream")  # claims and settles, in order
        self.waits = ThreadPoolExecutor(1, thread_name_prefix="taskrail-wait")  # blocks on the wake-up lists

    async def run(self) -> None:
        """Claim, start and settle until stopped and drained (or, in burst mode, until the queues are empty)."""
        w = self.worker
        while True:
            if w.stopping and self.ready:  # claimed, never started: back to the front of their queues
                self._settle_later([Outcome(job, "requeue", exc_type="requeued") for job in reversed(self.ready)])
                self.ready.clear()
            if w.stopping and not self.tasks and self.waiter is None:  # a claim the waiter makes still comes back
                break
            claim = self._claim_size()
            if claim or self._flush_due():
                outcomes, self.pending = self.pending, []
                rows = await self._io(w._exchange, w.connection, outcomes, claim)
                if claim:  # a settle alone says nothing of the queues (and never claims beside the waiter)
                    self.empty = len(rows) < claim
                self.ready.extend(rows)
                self._start_ready(claimed=True)
                if rows:
                    continue
            if not self.tasks and not self.pending and self.waiter is None and await self._idle_ends():
                break
            await self._nap()
        if self.pending:
            outcomes, self.pending = self.pending, []
            await self._io(w._exchange, w.connection, outcomes, 0, False)

    def close(self) -> None:
        for executor in (self.pool, self.io, self.waits):
            executor.shutdown(wait=False, cancel_futures=True)

    # ---- the stream ---------------------------------------------------------------------------

    def _claim_size(self) -> int:
        """How many jobs the next round trip claims: up to the free slots plus the prefetch, in batches."""
        return 0 if self.empty else self._room()

    def _room(self) -> int:
        """How many jobs a claim may take now (0 while fewer than a batch's worth of slots are free)."""
        w = self.worker
        if w.stopping or w.suspended:
            return 0
        held = len(self.tasks) + len(self.ready)
        want = len(w.slots) + self.prefetch - held
        limits = [n - w.jobs_done - held for n in (w.max_jobs, w.settings.max_jobs) if n]
        if limits:  # claim no job that max_jobs would hand back unrun
            want = min(want, *limits)
        if want <= 0 or (held and want < max(1, self.prefetch // 2)):
            return 0  # enough at hand: claim when a batch's worth is free, not per finished job
        return want

    def _flush_due(self) -> bool:
        if not self.pending:
            return False
        w = self.worker
        return w.stopping or not self.tasks or time.monotonic() - self.first_pending >= FLUSH_AFTER_S

    async def _idle_ends(self) -> bool:
        """Nothing runs and nothing waits to settle: True when the worker should leave its loop (burst)."""
        w = self.worker
        if w.suspended:
            if w.burst:
                log.info("worker %s: suspended in burst mode, exiting", w.name)
                return True
            await self._io(w._wait_suspended)
            return False
        if self.empty and w.burst:
            return bool(await self._io(w._queues_empty, w.connection))
        return False

    async def _nap(self) -> None:
        """Wait for a job to finish, new work on the wake-up lists, or the next flush."""
        w = self.worker
        if self.empty and self.waiter is None and not w.stopping and not w.suspended:
            room = self._room()
            self.waiter = self.loop.run_in_executor(self.waits, self._wait_and_claim, room)
            self.waiter.add_done_callback(functools.partial(self._work_arrived, room))
        timeout = NAP_S
        if self.pending:
            timeout = max(0.0, min(timeout, self.first_pending + FLUSH_AFTER_S - time.monotonic()))
        if not self.wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()

    def _wait_and_claim(self, room: int) -> list[ClaimedJob] | None:
        """On the wait thread: block on the wake-up lists and claim up to ``room`` jobs in the same round trip
        (the server runs the claim as the wait ends), rather than wake the loop to send the claim from the
        stream's thread. A claim that comes back as the worker stops is handed back by ``run``."""
        w = self.worker
        if not room or w.stopping or w.suspended:
            w._wait_for_work(w.connection)
            return None  # no claim: the loop claims when it may
        return w._wait_for_work(w.connection, room)

    def _work_arrived(self, room: int, future: asyncio.Future[list[ClaimedJob] | None]) -> None:
        """The waiter's claim, handed to the loop: started at once on free slots, the rest handed back by ``run``
        when stopping."""
        self.waiter = None
        rows = None
        if not future.cancelled():
            if future.exception() is None:
                rows = future.result()
            else:  # the loop's own claim next says what is wrong, as without the waiter
                log.warning("worker %s: claim after a wake-up failed: %r", self.worker.name, future.exception())
        self.empty = rows is not None and len(rows) < room  # came back short: the next wait starts at once
        self.ready.extend(rows or ())
        self._start_ready(claimed=True)
        self.wake.set()

    def _settle_later(self, outcomes: list[Outcome]) -> None:
        if outcomes and not self.pending:
            self.first_pending = time.monotonic()
        self.pending.extend(outcomes)

    async def _io(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on the stream's I/O thread: the loop runs jobs while the server answers."""
        return await self.loop.run_in_executor(self.io, func, *args)

    # ---- the jobs -----------------------------------------------------------------------------

    def _start_ready(self, claimed: bool = False) -> None:
        """Start ready jobs on free slots; those of a claim that just came back (``claimed``) even while stopping:
        the server claimed them before it knew of the stop (claim.lua), and RQ shows them started."""
        w = self.worker
        while self.ready and self.free and (not w.stopping or (claimed and w.may_start_claimed)):
            slot = self.free.popleft()
            job = self.ready.popleft()
            slot.job, slot.started_at, slot.job_id = job, time.time(), job.id  # job first: inspect reads by job_id
            self.tasks[slot.index] = self.loop.create_task(self._job(job, slot))

    async def _job(self, job: ClaimedJob, slot: Slot) -> None:
        w = self.worker
        started = slot.started_at
        try:
            outcome = await self._outcome(job, slot)
            if has_success_callback(outcome):  # RQ's on_success, before the success is recorded
                call = self._in_pool(slot, None, run_success_callback, w.connection, outcome, w._callback_limit)
                outcome = await self._past_stops(asyncio.ensure_future(call), slot)
            outcome = w._ran(outcome, started)
        finally:
            del self.tasks[slot.index]
            slot.job_id = None
            self.free.append(slot)
        self._settle_later([outcome])
        self._start_ready()
        self.wake.set()

    @staticmethod
    async def _past_stops(step: asyncio.Future[T], slot: Slot) -> T:
        """Await a step after the job's own code: a stop sent while the job was ending lands here, too late to
        stop anything, and is dropped (a stop of the step itself reaches its pool thread)."""
        while True:
            try:
                return await asyncio.shield(step)
            except asyncio.CancelledError:
                if slot.pending is None:
                    raise
                cancelled_stop(slot, slot.pending)

    async def _outcome(self, job: ClaimedJob, slot: Slot) -> Outcome:
        """Run the job and say how it ended; a stop that landed outside its task's code ends it too."""
        w = self.worker
        limit = job.timeout if job.timeout and job.timeout > 0 else None
        try:
            try:
                prepared = prepare_job(job, w._resolve_flow)
                if isinstance(prepared, Outcome):
                    return prepared
                if not is_async(prepared):
                    return await self._in_pool(slot, limit, run_prepared, job, prepared, w._write_progress, None,
                                               w.connection)  # fmt: skip
                slot.deadline = time.monotonic() + limit if limit else None
                w.interrupter.arm(slot, limit)
                return await run_async(job, prepared, w._write_progress, w.connection, slot)
            except asyncio.CancelledError:
                if slot.pending is None:
                    raise
                raise cancelled_stop(slot, slot.pending) from None
        except (Interrupted, TaskRevoked) as exc:
            return Outcome(job, "requeue" if isinstance(exc, Interrupted) else "revoked", ttl=job.failure_ttl)
        except (JobStopped, HorseKilled) as stop:
            return operator_stop(job, "", stop, 0.0)
        except Exception as exc:  # any other per-job step that broke: this job fails, the worker carries on
            log.exception("job %s could not be run", job.id)
            return job_error(job, exc)
        finally:
            w.interrupter.disarm(slot)

    async def _in_pool(self, slot: Slot, limit: int | None, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on a pool thread, as the job of ``slot``: its time limit, revokes and stops reach it
        there as in threads mode (an asynchronous exception)."""
        interrupter = self.worker.interrupter

        def run() -> T:
            slot.thread_ident = threading.get_ident()
            slot.deadline = time.monotonic() + limit if limit else None
            interrupter.arm(slot, limit)
            try:
                return func(*args)
            finally:
                interrupter.disarm(slot)
                slot.thread_ident = 0

        return await self.loop.run_in_executor(self.pool, run)
