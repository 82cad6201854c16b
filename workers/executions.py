"""RQ 3's execution records for the jobs a worker has been running a while, written from its maintenance thread.

RQ 3's worker writes an execution record (``rq:execution:<job>:<id>``, the job's ``rq:executions:<job>``
registry and the worker's ``rq:worker:<name>:executions`` index) for every job, in round trips of its own.
``workers.Worker`` writes one only for a job still running ``EXECUTION_AFTER_S`` after it started, from the
maintenance thread (tasks/core/lua/execution.lua), and refreshes it while the job runs; the settle that
ends the job deletes it in the same script (includes/settle.lua, for a job marked ``tr_exec``). A short job
costs nothing: the job loop never touches these records. So ``job.get_executions()`` is empty for a job
that ran shorter than that, and shows the execution of a longer one, with the worker's name as its id;
``send_stop_execution_command`` reaches the worker with that id (workers/commands.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis

from tasks.core import keys
from tasks.core.scripting import load_command
from workers.interrupts import Slot

__all__ = ["EXECUTION_AFTER_S", "ExecutionRecords"]

EXECUTION_AFTER_S = 0.25  # a job running this long gets its RQ execution record
MIN_TTL_S = 60  # the record's TTL at least; refreshed every quarter of it while the job runs


class ExecutionRecords:
    """Which running jobs have their RQ execution record; writes the missing ones and refreshes the others."""

    def __init__(self, conn: redis.Redis, worker: str, heartbeat_ttl_s: float) -> None:
        self.conn = conn
        self.worker = worker
        self.ttl_s = int(max(MIN_TTL_S, heartbeat_ttl_s * 10))
        self._script = load_command("execution")
        self._written: dict[tuple[str, int], float] = {}  # (job id, token) -> when its record was last written

    def tick(self, slots: Sequence[Slot], now: float | None = None) -> None:
        """Write the record of every job running past the threshold that lacks one, or whose record is due
        for a refresh; forget the jobs that ended."""
        now = time.time() if now is None else now
        running = [_running(slot) for slot in slots]
        current = {run[:2]: run[2] for run in running if run is not None}
        for gone in set(self._written) - set(current):
            del self._written[gone]
        due = [
            job
            for job, started in current.items()
            if now - started >= EXECUTION_AFTER_S and now - self._written.get(job, 0.0) >= self.ttl_s / 4
        ]
        if not due:
            return
        args: list[Any] = [self.worker, now, self.ttl_s]
        for job_id, token in due:
            args += [job_id, token]
        self._script(self.conn, [keys.CLAIMS.format(self.worker)], args)
        for job in due:  # a job skipped by the fence has ended: it leaves the table at the next tick
            self._written[job] = now


def _running(slot: Slot) -> tuple[str, int, float] | None:
    """(job id, claim token, start time) of the job ``slot`` runs now, None when idle. Read without a lock
    while the job loop may move on: the id is read first and must match the job read after it."""
    job_id = slot.job_id
    job = slot.job
    if not job_id or job is None or job.id != job_id:
        return None
    return job_id, int(job.attempts), float(slot.started_at)
