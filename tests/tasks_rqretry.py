"""Tasks of the tests of RQ's Retry, RateLimit and Repeat (tests/test_rq_retry.py, tests/test_rq_repeat.py),
imported by workers through TASKRAIL_IMPORTS."""

from __future__ import annotations

import os
from typing import Any

import redis
from rq import Retry

from tasks import register_callback, task


def _runs(key: str) -> int:
    """Count one more run under ``key`` (the tests read it) and return the count."""
    return int(redis.Redis.from_url(os.environ["REDIS_URL"]).incr(key))


@task(queue="rqretry")
def flaky(key: str, failures: int) -> str:
    """Fail the first ``failures`` runs, then succeed."""
    if _runs(key) <= failures:
        raise ZeroDivisionError(f"run {key} fails")
    return "ok"


@task(queue="rqretry")
def again(key: str, max_: int, interval: int = 0) -> Retry:
    """Ask RQ's way for another attempt, every run."""
    _runs(key)
    return Retry(max=max_, interval=interval)


@task(queue="rqretry")
def count(key: str) -> int:
    """Count one more run and return the count."""
    return _runs(key)


@register_callback
def note_failure(job: Any, connection: redis.Redis, exc_type: type, value: BaseException, tb: Any) -> None:
    """Record each on_failure call, as RQ makes it."""
    connection.rpush("failures", f"{job.id}:{exc_type.__name__}")
