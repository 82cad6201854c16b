"""The claimed job and how it ended: one row of a claim's reply in, one FINISH record out.

The data both execution modes (workers/runner.py's loop and threads, workers/aio.py) and fork isolation
pass around; how a job is run lives in workers/runner.py.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from tasks.core.protocol import epoch_text

__all__ = [
    "BUCKETS_S",
    "BUCKET_LABELS",
    "KILLED_MESSAGE",
    "STOPPED_MESSAGE",
    "TIMED",
    "UNREACHABLE",
    "ClaimedJob",
    "HorseKilled",
    "Interrupted",
    "JobStopped",
    "Outcome",
    "OutcomeKind",
]

# Prometheus-style duration buckets (seconds); the label of a job's bucket goes to Redis.
BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
BUCKET_LABELS = tuple(f"b:{b:g}" for b in BUCKETS_S) + ("b:+Inf",)
TIMED = frozenset(("ok", "fail", "rq_repeat"))  # the kinds whose duration counts in the task's histogram
# The server cannot be reached: refused or reset (ConnectionError), or silent, as behind a cut link (TimeoutError,
# which redis-py does not derive from ConnectionError). Either way a worker waits and tries again.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


class Interrupted(BaseException):
    """Raised inside a job when the worker must stop it at the shutdown deadline; it is requeued."""


class JobStopped(BaseException):
    """Raised inside a job that RQ's ``stop-job`` command stopped; it ends as ``stopped``, not retried."""


class HorseKilled(BaseException):
    """Raised inside a job whose work-horse RQ's ``kill-horse`` command killed; it fails, as in RQ."""


STOPPED_MESSAGE = "Job stopped by user, work-horse terminated."  # RQ's own text for a stopped job
KILLED_MESSAGE = "work-horse killed by a kill-horse command"


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker has taken, as CLAIM returned it."""

    id: str
    queue: str
    data: bytes
    attempts: int
    retries: int
    timeout: int
    result_ttl: int
    failure_ttl: int
    stalls: int
    flow: bytes = b""
    poison: str = ""  # why CLAIM found the job unrunnable ("" = runnable); it fails without running
    # the RQ callbacks the job has: s success, f failure, t stopped ("" = none); r: RQ's Retry has retries
    # left, p: RQ's Repeat has repeats left
    callbacks: str = ""
    # RQ's on_success, as the claim read it: (its name, its timeout, '' for RQ's default); None without one
    on_success: tuple[str, str] | None = field(default=None, compare=False)

    @classmethod
    def orphan(cls, job_id: str, queue: str) -> ClaimedJob:
        """A claimed job known only by id and queue, to hand it back."""
        return cls(job_id, queue, b"", 0, 0, -1, 0, 0, 0)

    @classmethod
    def from_reply(cls, row: list[Any], default_result_ttl: int, default_failure_ttl: int) -> ClaimedJob:
        try:  # claim.lua checked the numbers: each is a whole number or '' (its default)
            numbers = (int(row[4] or 0), int(row[5] or -1), int(row[6] or default_result_ttl),
                       int(row[7] or default_failure_ttl), int(row[8] or 0))  # fmt: skip
        except (TypeError, ValueError):  # a row from elsewhere: each bad number takes its default
            numbers = (_num(row[4], 0), _num(row[5], -1), _num(row[6], default_result_ttl),
                       _num(row[7], default_failure_ttl), _num(row[8], 0))  # fmt: skip
        job = object.__new__(cls)  # per job: one dict update, not the frozen __init__'s 12 object.__setattr__
        job.__dict__.update(
            id=row[0].decode(),
            queue=row[1].decode(),
            data=row[2],
            attempts=int(row[3]),
            retries=numbers[0],
            timeout=numbers[1],
            result_ttl=numbers[2],
            failure_ttl=numbers[3],
            stalls=numbers[4],
            flow=row[9] if len(row) > 9 else b"",
            poison=row[10].decode(errors="replace") if len(row) > 10 and row[10] else "",
            callbacks=row[11].decode() if len(row) > 11 and row[11] else "",
            on_success=(row[12].decode(), row[13].decode()) if len(row) > 13 else None,
        )
        return job


def _num(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# The FINISH script branches on this value (ARGV), so it is part of the Python<->Lua contract.
# rq_retry: a failure of a job with RQ retries left (Retry given to enqueue); rq_returned: the task
# returned an RQ Retry (payload: rq_retry_spec); rq_repeat: a success of a job with RQ Repeat left. The
# server settles them as RQ does (includes/rq_retry.lua).
OutcomeKind = Literal["ok", "fail", "retry", "requeue", "revoked", "stopped", "rq_retry", "rq_returned", "rq_repeat"]


@dataclass
class Outcome:
    """How a job ended; becomes one FINISH record."""

    job: ClaimedJob
    kind: OutcomeKind
    task: str = ""
    payload: str = ""
    ttl: int = 0
    retry_at: float = 0.0
    exc_type: str = ""
    exc_message: str = ""
    duration_s: float = 0.0
    # The exception itself, for RQ exception handlers and on_failure callbacks; never sent to Redis nor
    # across a fork.
    error: BaseException | None = field(default=None, repr=False, compare=False)
    value: Any = field(default=None, repr=False, compare=False)  # the return value, for Celery's hooks
    # When the job's run began and ended (epoch seconds; 0: it did not run here): its started_at and ended_at,
    # where a batch's claim and settle times would give every job of the batch the same ones.
    started_at: float = 0.0
    ended_at: float = 0.0

    def record(self) -> list[Any]:
        """The FINISH script's fields for this outcome."""
        kind, job, duration = self.kind, self.job, self.duration_s
        message = self.exc_message
        return [
            job.id,
            job.queue,
            kind,
            self.payload,
            self.ttl,
            self.retry_at,
            self.exc_type,
            message[:2000] if len(message) > 2000 else message,
            round(duration * 1000, 3),
            self.task,
            BUCKET_LABELS[bisect_left(BUCKETS_S, duration)] if kind in TIMED else "",
            job.attempts,  # the claim's token: finish.lua applies the record only under this claim
            epoch_text(self.started_at) if self.started_at else "",
            epoch_text(self.ended_at) if self.ended_at else "",
        ]
