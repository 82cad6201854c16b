"""The threads mode of ``workers.Worker`` (``concurrency`` above 1, ``pool: threads``): one claim/settle stream
for all the slot threads of the process.

- Each slot thread runs jobs taken from one shared deque of claimed jobs (``ready``) and leaves each outcome
  in one shared list; it never makes a round trip of its own between jobs.
- The thread that called ``work()`` is the stream: it claims jobs for the free slots plus a prefetch (as many
  as the slots finish in ``TARGET_BATCH_S``, judged by recent durations; none until a job has been measured)
  in one round trip, and settles the finished jobs in batches with the next claim, or at least every
  ``FLUSH_AFTER_S`` (claim.lua and finish.lua, as in the other modes). So 50 threads of short jobs make one
  round trip per batch, not one per job and thread.
- When a claim comes back short, one idle slot thread blocks on the wake-up lists with a claim queued behind
  the wait (one round trip), runs the first job it brings and hands the rest to the other slot threads, while
  the stream goes on settling.
- A stop: nothing more is claimed (the server takes nothing once the worker recorded it); claimed jobs that no
  idle slot thread takes go back to the front of their queues; running jobs finish until the shutdown deadline.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from workers.inline import FLUSH_AFTER_S, TARGET_BATCH_S  # the same pace as the inline loop's
from workers.runner import ClaimedJob, Outcome

if TYPE_CHECKING:
    from workers.inline import InlineWorker
    from workers.interrupts import Slot

__all__ = ["SharedStream"]

log = logging.getLogger("taskrail.worker")
T = TypeVar("T")

NAP_S = 0.1  # longest wait of the stream between looks at the stop and suspension flags


class SharedStream:
    """Slot threads that run jobs, and the calling thread that claims and settles for all of them."""

    def __init__(self, worker: InlineWorker) -> None:
        self.w = worker
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)  # slot threads wait on it for a job
        self.changed = threading.Condition(self.lock)  # the stream waits on it for an outcome or a claim
        self.ready: deque[ClaimedJob] = deque()  # claimed, not started
        self.pending: list[Outcome] = []  # ended, not settled
        self.first_pending = 0.0
        self.running = 0
        self.idle = 0  # slot threads waiting for a job
        self.empty = False  # the last claim came back short: an idle slot thread waits, then claims
        self.waiting = False  # a slot thread waits on the wake-up lists (a claim queued behind)
        self.closing = False
        worker.slots[0].reserved = self.ready  # what `taskrail inspect reserved` lists

    def run(self) -> None:
        """Claim, run and settle until stopped and drained (in burst mode: until the queues are empty)."""
        threads = [threading.Thread(target=self._slot, args=(slot,), name=f"taskrail-slot-{slot.index}", daemon=True)
                   for slot in self.w.slots]  # fmt: skip
        for thread in threads:
            thread.start()
        try:
            self._stream()
        finally:
            with self.lock:
                self.closing = True
                self.work.notify_all()
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.2)  # short joins keep signal handling responsive
            with self.lock:
                # claimed but never started: back to the front of their queues, in their order
                outcomes = self.pending + [Outcome(job, "requeue", exc_type="requeued") for job in reversed(self.ready)]
                self.pending, self.ready = [], deque()
            if outcomes:
                self.w._exchange(self.w.connection, outcomes, 0, retry_until_stopped=False)

    # ---- the slot threads ---------------------------------------------------------------------

    def _slot(self, slot: Slot) -> None:
        slot.thread_ident = threading.get_ident()
        loop = asyncio.new_event_loop()  # this thread's, for async def tasks run here
        w = self.w
        try:
            while True:
                with self.lock:
                    job = self._take()
                    if job is None:
                        return
                outcome = w._run(slot, job, loop)
                with self.lock:
                    if not self.pending:
                        self.first_pending = time.monotonic()
                    self.pending.append(outcome)
                    self.running -= 1
                    if not self.running or (not self.empty and self._room()):
                        self.changed.notify()  # a settle of all, or room for a claim
        finally:
            loop.close()

    def _take(self) -> ClaimedJob | None:
        """Under the lock: the next job for this slot thread, None when the worker closes. While the queues are
        empty, one idle slot thread waits on the wake-up lists itself, its claim queued behind the wait, and runs
        the first job that claim brings: no hand-over between threads for a job that finds the worker idle."""
        w = self.w
        while True:
            if self.ready and w.may_start_claimed:
                self.running += 1
                if not self.empty and self._room():
                    self.changed.notify()  # room for a claim
                return self.ready.popleft()
            if self.closing:
                return None
            if self.empty and not self.waiting and not (w.stopping or w.suspended or w.burst):
                room = self._room()
                self.waiting = True
                rows = self._unlocked(self._wait, room)
                self.waiting = False
                self.empty = len(rows) < room  # came back short: the next wait starts at once
                self._hand_out(rows, keep=1)
                self.changed.notify()
                continue
            self.idle += 1
            self.work.wait()
            self.idle -= 1

    # ---- the stream ---------------------------------------------------------------------------

    def _stream(self) -> None:
        w, conn = self.w, self.w.connection
        while True:
            with self.lock:
                claim, outcomes = self._next_round_trip()
                if claim < 0:
                    return
            if claim == 0 and not outcomes:
                continue  # waited: look again
            rows = w._exchange(conn, outcomes, claim)
            with self.lock:
                if claim:  # a settle alone says nothing of the queues
                    self.empty = len(rows) < claim
                self._hand_out(rows)

    def _next_round_trip(self) -> tuple[int, list[Outcome]]:
        """Under the lock: how many jobs to claim and which outcomes to settle now (-1: the stream ends);
        (0, []) after waiting for something to change."""
        w = self.w
        if w.stopping and self.ready:
            self._hand_back_unstarted()
        claim = 0 if self.empty else self._room()
        if claim or self._flush_due():
            outcomes, self.pending = self.pending, []
            return claim, outcomes
        if not self.running and not self.pending and not self.waiting and not self.ready:  # nothing in hand
            if w.stopping:
                return -1, []
            if w.suspended:
                if w.burst:
                    log.info("worker %s: suspended in burst mode, exiting", w.name)
                    return -1, []
                self._unlocked(w._wait_suspended)
                return 0, []
            if w.burst and self.empty:
                if self._unlocked(w._queues_empty, w.connection):
                    return -1, []
                self.empty = False  # claim what came
                return 0, []
        if self.empty and not self.waiting and self.idle:
            self.work.notify()  # an idle slot thread takes up the wait (after a short claim, a resume)
        timeout = NAP_S
        if self.pending:
            timeout = max(0.0, min(timeout, self.first_pending + FLUSH_AFTER_S - time.monotonic()))
        self.changed.wait(timeout)
        return 0, []

    def _unlocked(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` with the lock released (it reads or writes Redis), taken again after."""
        self.lock.release()
        try:
            return func(*args)
        finally:
            self.lock.acquire()

    def _wait(self, room: int) -> list[ClaimedJob]:
        """Block on the wake-up lists and claim up to ``room`` jobs as the wait ends (without the lock)."""
        w = self.w
        try:
            return w._wait_for_work(w.connection, room)
        except Exception:  # the stream's next claim says what is wrong
            log.exception("worker %s: wait for new work failed", w.name)
            time.sleep(0.5)
            return []

    def _hand_out(self, rows: list[ClaimedJob], keep: int = 0) -> None:
        """Claimed jobs to the slot threads; ``keep``: how many the calling slot thread takes itself."""
        if rows:
            self.ready.extend(rows)
            self.work.notify(len(rows) - keep)

    def _hand_back_unstarted(self) -> None:
        """Stopping: the claimed jobs no idle slot thread is about to take go back to the front of their queues
        (those it takes were claimed before the server knew of the stop, and start)."""
        keep = self.idle if self.w.may_start_claimed else 0
        while len(self.ready) > keep:
            job = self.ready.pop()
            if not self.pending:
                self.first_pending = time.monotonic()
            self.pending.append(Outcome(job, "requeue", exc_type="requeued"))

    def _prefetch(self) -> int:
        """Jobs claimed beyond the free slots: what the slots finish in TARGET_BATCH_S (none until measured)."""
        w = self.w
        if not w.jobs_done:
            return 0
        return min(w.settings.max_batch, int(len(w.slots) * TARGET_BATCH_S / max(w._avg_job_s, 1e-6)))

    def _room(self) -> int:
        """How many jobs a claim may take now (0 while fewer than half a prefetch's worth are free)."""
        w = self.w
        if w.stopping or w.suspended or self.waiting:
            return 0
        held, prefetch = self.running + len(self.ready), self._prefetch()
        want = len(w.slots) + prefetch - held
        limits = [n - w.jobs_done - held for n in (w.max_jobs, w.settings.max_jobs) if n]
        if limits:  # claim no job that max_jobs would hand back unrun
            want = min(want, *limits)
        if want <= 0 or (held and want < max(1, prefetch // 2)):
            return 0
        return want

    def _flush_due(self) -> bool:
        if not self.pending:
            return False
        return self.w.stopping or not self.running or time.monotonic() - self.first_pending >= FLUSH_AFTER_S
