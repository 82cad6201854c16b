"""Tasks and an RQ exception handler used by tests/test_rq_worker_ops.py (imported through TASKRAIL_IMPORTS)."""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any

import redis

from tasks import task


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@task(queue="ops")
def nap(seconds: float, flag: str = "") -> float:
    """Sleeps; with ``flag``, first writes the running process's pid there."""
    if flag:
        _conn().set(flag, os.getpid())
    time.sleep(seconds)
    return seconds


@task(queue="ops")
def crash(message: str) -> None:
    raise ValueError(message)


@task(queue="ops")
def note(key: str, value: str) -> str:
    """Appends ``value`` to the list ``key``: the order jobs ran in."""
    _conn().rpush(key, value)
    return value


def record_failure(job: Any, exc_type: type[BaseException], exc_value: BaseException, tb: TracebackType | None) -> None:
    """An RQ exception handler (``rq worker --exception-handler``): records what it was called with."""
    _conn().rpush("ops:handled", f"{job.id}|{exc_type.__name__}|{exc_value}|{job.origin}")
