"""Tasks for the correctness-under-speed tests: each records that it ran."""

from __future__ import annotations

import os
import time

import redis

from tasks import task

_CONN: redis.Redis | None = None


def _conn() -> redis.Redis:
    global _CONN  # one connection per worker process, made on first use
    if _CONN is None:
        _CONN = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _CONN


@task(queue="speed")
def count(n: int) -> None:
    """Counts its executions per argument."""
    _conn().hincrby("executions", str(n), 1)


@task(queue="speed")
def ordered(n: int) -> None:
    _conn().rpush("order", n)


@task(queue="speed")
def slowish(n: int) -> None:
    time.sleep(0.002)
    _conn().hincrby("executions", str(n), 1)
