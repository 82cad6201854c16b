"""Tasks whose work-horse dies, for tests/test_isolation.py (imported through TASKRAIL_IMPORTS)."""

from __future__ import annotations

import os
import signal
from typing import Any

import redis

from tasks import WorkerLostError, register_callback, task


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def _die_on(key: str, attempts: int) -> int:
    """Counts its attempts in ``key``; kills its own process (a crash no Python code can catch) on the first
    ``attempts`` of them, else returns the count."""
    count = int(_conn().incr(key))
    if count <= attempts:
        os.kill(os.getpid(), signal.SIGKILL)
    return count


@task(queue="core")
def dies(key: str, attempts: int = 99) -> int:
    """A plain task: a dead work-horse fails it."""
    return _die_on(key, attempts)


@task(queue="core", reject_on_worker_lost=True)
def dies_rejected(key: str, attempts: int = 99) -> int:
    """Celery's reject_on_worker_lost: a dead work-horse puts the job back in its queue (max_stalled times)."""
    return _die_on(key, attempts)


@task(queue="core", autoretry_for=(WorkerLostError,), max_retries=2, default_retry_delay=0)
def dies_retried(key: str, attempts: int = 99) -> int:
    """Retries a dead work-horse like any error it retries."""
    return _die_on(key, attempts)


@task(queue="core")
def mark(key: str) -> str:
    """Sets ``key``: a dependent ran."""
    _conn().set(key, "ran")
    return "ran"


@register_callback
def note_lost(job: Any, connection: redis.Redis, exc_type: type, value: BaseException, tb: Any) -> None:
    """An RQ on_failure callback: records the error it was called with."""
    connection.rpush("lost:failures", f"{job.id}|{exc_type.__name__}")
