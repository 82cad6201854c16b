"""The worker's background thread: heartbeats, time limits, revokes, the shutdown deadline, RQ's
suspension (`rq suspend`, polled every second so the job loop pays nothing for it), RQ's execution
records of jobs running a while (workers/executions.py), and,
on the one elected leader, the scheduler (due jobs into queues) and recovery of dead workers' jobs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Protocol

import redis
from rq.suspension import is_suspended

from config.errors import TaskTimeout
from config.settings import Settings
from tasks.core import keys
from tasks.core.protocol import epoch_text
from tasks.core.scripting import load_command
from workers.alive import touch_alive
from workers.executions import ExecutionRecords
from workers.interrupts import Interrupter, Slot
from workers.periodic import PeriodicScheduler
from workers.sentry import capture_stalled

__all__ = ["LEADER_KEY", "MaintainedWorker", "Maintenance"]

log = logging.getLogger("taskrail.maintenance")

LEADER_KEY = keys.LEADER
TICK_S = 0.1
RQ_HEARTBEAT_S = 15.0
ORPHAN_SWEEP_S = 5.0
SUSPENSION_POLL_S = 1.0


class MaintainedWorker(Protocol):
    """What maintenance needs of its worker (workers/worker.py's ``Worker``)."""

    shutdown_deadline: float | None  # monotonic; maintenance clears it once it has acted on it
    suspended: bool  # maintenance sets it while RQ's suspension key exists; the job loop claims nothing

    @property
    def name(self) -> str: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def connection(self) -> redis.Redis: ...
    @property
    def slots(self) -> list[Slot]: ...
    @property
    def interrupter(self) -> Interrupter: ...
    @property
    def stopping(self) -> bool: ...

    def heartbeat(self) -> None:
        """RQ's own worker heartbeat."""

    def interrupt_all(self) -> None: ...
    def log_notices(self) -> None: ...
    def record_stop(self) -> None: ...
    def revoke_running(self, job_ids: set[str]) -> None: ...
    def held_ids(self) -> set[str]: ...
    def release_orphans(self, orphans: dict[str, str]) -> None: ...
    def recycle(self, reason: str) -> None: ...


class Maintenance(threading.Thread):
    """Runs beside the job loop; never touches a job's code except to stop it."""

    def __init__(self, worker: MaintainedWorker) -> None:
        super().__init__(name="taskrail-maintenance", daemon=True)
        self.worker = worker
        self.settings = worker.settings
        self.conn = worker.connection
        self._done = threading.Event()
        self._heartbeat = load_command("heartbeat")  # tasks/core/lua/heartbeat.lua
        self._promote = load_command("promote")
        self._reap = load_command("reap")
        self.periodic = PeriodicScheduler(self.conn, self.settings)  # validates config/periodic.yaml now
        self.executions = ExecutionRecords(self.conn, worker.name, self.settings.heartbeat_ttl_s)
        self.is_leader = False
        self._next_beat = 0.0
        self._next_rq_beat = 0.0
        self._next_reap = 0.0
        self._next_suspension = 0.0
        self._next_sweep = time.monotonic() + ORPHAN_SWEEP_S
        self._suspects: set[str] = set()
        self._failures = 0

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)

    def run(self) -> None:
        while not self._done.wait(TICK_S):
            try:
                self.tick()
                self._failures = 0
            except redis.RedisError as exc:
                self._failures += 1
                if self._failures in (1, 10) or self._failures % 100 == 0:
                    log.warning("maintenance: Redis unreachable (%s), retrying", exc)
            except Exception:  # a bug here must not take the worker down with it
                log.exception("maintenance tick failed")

    def tick(self) -> None:
        now = time.monotonic()
        self.worker.log_notices()  # a stop request's, noted by its signal handler, which may not log
        self.worker.record_stop()  # and tells the server, which then claims nothing for this worker
        self._enforce_deadlines(now)
        self.executions.tick(self.worker.slots)
        if now >= self._next_beat:
            self._next_beat = now + self.settings.heartbeat_interval_s
            self.beat()
            self._check_memory()
        if now >= self._next_sweep:
            self._next_sweep = now + ORPHAN_SWEEP_S
            self._sweep_orphans()
        if now >= self._next_suspension:
            self._next_suspension = now + SUSPENSION_POLL_S
            suspended = bool(is_suspended(self.conn))
            if suspended != self.worker.suspended:
                log.info("worker %s %s", self.worker.name, "suspended (rq suspend)" if suspended else "resumed")
            self.worker.suspended = suspended
        if now >= self._next_rq_beat:
            self._next_rq_beat = now + RQ_HEARTBEAT_S
            self.worker.heartbeat()
        if self.is_leader:
            self._promote_due()
            self.periodic.tick()
            if now >= self._next_reap:
                self._next_reap = now + self.settings.heartbeat_interval_s
                self._recover()

    def _enforce_deadlines(self, now: float) -> None:
        worker = self.worker
        for slot in worker.slots:
            if slot.active and slot.deadline is not None and now > slot.deadline + 0.05:
                worker.interrupter.stop(slot, TaskTimeout)
        deadline = worker.shutdown_deadline
        if worker.stopping and deadline is not None and now >= deadline:
            if any(slot.active for slot in worker.slots):
                log.warning("shutdown deadline passed: requeueing running jobs at the front of their queues")
                worker.interrupt_all()
            worker.shutdown_deadline = None

    def beat(self) -> None:
        """Heartbeat, worker-set membership, held jobs' deadlines and the leader lease, in one go."""
        s = self.settings
        name = self.worker.name
        touch_alive(s.data_dir, name)  # first, Redis or not: the probes' cheap check (workers/alive.py)
        ttl_ms = int(s.heartbeat_ttl_s * 1000)
        score = time.time() + max(60, s.heartbeat_ttl_s * 10)
        revoked = self._heartbeat(
            self.conn, [keys.HEARTBEAT.format(name), keys.CLAIMS.format(name), keys.WORKERS], [name, ttl_ms, score]
        )
        if revoked:
            self.worker.revoke_running({r.decode() for r in revoked})
        self._next_beat = time.monotonic() + s.heartbeat_interval_s
        self._elect(name, ttl_ms)

    def _elect(self, name: str, ttl_ms: int) -> None:
        """Hold or take the leader lock; the leader schedules and recovers for everyone."""
        lease_ms = max(ttl_ms // 2, 2000)
        if self.conn.set(LEADER_KEY, name, nx=True, px=lease_ms):
            if not self.is_leader:
                log.info("worker %s is now the scheduler and recovery leader", name)
            self.is_leader = True
            return
        holder = self.conn.get(LEADER_KEY)
        self.is_leader = holder is not None and holder.decode() == name
        if self.is_leader:
            self.conn.pexpire(LEADER_KEY, lease_ms)

    def _promote_due(self) -> None:
        queues = sorted({keys.queue_name(q.decode()) for q in self.conn.smembers(keys.QUEUES)})
        if queues:
            now = time.time()
            self._promote(self.conn, queues, [now, _now_text(now), 1000])

    def _recover(self) -> None:
        now = time.time()
        s = self.settings
        recovered = self._reap(
            self.conn,
            [keys.WORKERS],
            [now, _now_text(now), s.events_maxlen, int(now // 60), s.max_stalled, s.failure_ttl_s],
        )
        if recovered:
            ids = [r.decode() for r in recovered]
            log.warning("recovered %d jobs of dead workers: %s", len(ids), ", ".join(ids))
            capture_stalled(self.conn, ids, s.max_stalled)

    def _sweep_orphans(self) -> None:
        """Claims of this worker that no thread of it holds, seen in two sweeps in a row, go back.

        A claim whose reply was lost (a connection that broke after the server ran the script)
        would otherwise stay with a live worker forever; two sightings rule out an exchange in flight.
        """
        claimed = {k.decode(): v.decode() for k, v in self.conn.hgetall(keys.CLAIMS.format(self.worker.name)).items()}
        suspects = set(claimed) - self.worker.held_ids()
        orphans = suspects & self._suspects
        self._suspects = suspects - orphans
        if orphans:
            self.worker.release_orphans({job_id: claimed[job_id] for job_id in orphans})

    def _check_memory(self) -> None:
        limit = self.settings.max_memory_mb
        if limit and rss_mb() > limit:
            self.worker.recycle(f"resident memory {rss_mb():.0f} MB passed max_memory_mb={limit}")


def rss_mb() -> float:
    """This process's resident memory in MB (Linux)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _now_text(now: float) -> str:
    return epoch_text(now)
