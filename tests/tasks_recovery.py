"""Tasks of the recovery tests: each records when it started and counts how often it ran to the end.

Redis keys: ``rec:starts:<job id>`` (list of "<unix time> <pid>", one per start) and
``rec:done:<job id>`` (INCR after the work, so a job killed mid-way never counts).
"""

from __future__ import annotations

import ctypes
import os
import time

import redis

from tasks import TaskTimeout, task

STEP_S = 0.05  # long jobs sleep in short steps so a stop reaches threads (asynchronous exceptions wait for a step)


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def _started(job_id: str) -> redis.Redis:
    conn = _conn()
    conn.rpush(f"rec:starts:{job_id}", f"{time.time()} {os.getpid()}")
    return conn


def _work(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(STEP_S, max(end - time.monotonic(), 0)))


@task(queue="rec", bind=True)
def long_job(self, seconds: float) -> str:
    """Works for ``seconds`` in short steps, then counts one completion."""
    conn = _started(self.request.id)
    _work(seconds)
    conn.incr(f"rec:done:{self.request.id}")
    return "done"


@task(queue="rec", bind=True)
def gated_job(self, gate: str) -> str:
    """Works until the test opens ``gate`` (at most 30 s), then counts one completion: it ends when the
    test says, not after a time the test must race."""
    conn = _started(self.request.id)
    conn.blpop([gate], timeout=30)
    conn.incr(f"rec:done:{self.request.id}")
    return "done"


@task(queue="rec", bind=True)
def long_first(self, first_s: float, later_s: float) -> str:
    """Works ``first_s`` on its first start (long enough to be killed in any case), ``later_s`` after."""
    conn = _started(self.request.id)
    _work(first_s if conn.llen(f"rec:starts:{self.request.id}") == 1 else later_s)
    conn.incr(f"rec:done:{self.request.id}")
    return "done"


@task(queue="rec", bind=True, reject_on_worker_lost=True)
def long_first_rejected(self, first_s: float, later_s: float) -> str:
    """``long_first`` with Celery's reject_on_worker_lost: a dead work-horse puts it back in its queue."""
    return str(long_first.func(self, first_s, later_s))


@task(queue="rec", bind=True)
def one_sleep(self, seconds: float) -> str:
    """One blocking ``sleep``: only a signal (the main-thread path) can stop it early."""
    conn = _started(self.request.id)
    time.sleep(seconds)
    conn.incr(f"rec:done:{self.request.id}")
    return "done"


@task(queue="rec")
def to_file(path: str, tag: str, seconds: float) -> str:
    """Appends ``tag`` to ``path`` after ``seconds``; touches no Redis, so it works while the server is down."""
    time.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(tag + "\n")
    return tag


@task(queue="rec", bind=True, time_limit=1, autoretry_for=(TaskTimeout,), max_retries=1, retry_backoff=0.1,
      retry_jitter=False)  # fmt: skip
def overruns_retried(self, seconds: float) -> str:
    _started(self.request.id)
    time.sleep(seconds)
    return "never"


@task(queue="rec", bind=True, time_limit=1)
def overruns(self, seconds: float) -> str:
    _started(self.request.id)
    time.sleep(seconds)
    return "never"


@task(queue="rec", bind=True)
def gil_first(self, first_s: float, later_s: float) -> str:
    """Holds the GIL in one C call for ``first_s`` on its first start (no heartbeat thread can run)."""
    conn = _started(self.request.id)
    seconds = first_s if conn.llen(f"rec:starts:{self.request.id}") == 1 else later_s
    ctypes.PyDLL(None).usleep(int(seconds * 1_000_000))  # PyDLL: the call keeps the GIL
    conn.incr(f"rec:done:{self.request.id}")
    return "done"
