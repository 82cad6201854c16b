"""Tasks of tests/test_threads_mode.py (``concurrency`` above 1, ``pool: threads``), imported by workers through
TASKRAIL_IMPORTS: plain functions that block their slot thread, as a blocking library would."""

from __future__ import annotations

import functools
import os
import threading
import time

import redis
from rq import get_current_job

from tasks import task

QUEUE = "thr"
RUNS_KEY = "thr:runs"  # hash: job id -> how many times it ran


@functools.cache
def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@task(queue=QUEUE)
def count(i: int, seconds: float = 0.0) -> int:
    """Block ``seconds``, then count one run of this job (by the id ``get_current_job`` gives)."""
    time.sleep(seconds)
    job = get_current_job()
    assert job is not None
    _conn().hincrby(RUNS_KEY, job.id, 1)
    return i


@task(queue=QUEUE)
def blocking(gate: str) -> str:
    """Block this slot thread until the test pushes to ``gate`` (30 s at most); the thread's name."""
    redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=40).blpop([gate], timeout=30)
    return threading.current_thread().name
