"""Tasks run as plain RQ jobs by tests/test_rq_dependencies.py (TASKRAIL_IMPORTS=tests.tasks_rq).

Each records its start and end times (``time.time()``) in the hash ``TIMES``, fields ``<name>:start`` and
``<name>:end``, so a test can check the order jobs ran in.
"""

from __future__ import annotations

import os
import time

import redis

from tasks import task

TIMES = "tests:rq:times"
FAIL_FLAG = "tests:rq:fail:{}"  # while it exists, flaky(name) raises


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@task(queue="rqdeps")
def step(name: str, seconds: float = 0.0) -> str:
    conn = _conn()
    conn.hset(TIMES, f"{name}:start", repr(time.time()))
    time.sleep(seconds)
    conn.hset(TIMES, f"{name}:end", repr(time.time()))
    return name


@task(queue="rqdeps", max_retries=0)
def flaky(name: str) -> str:
    """Fails while FAIL_FLAG for ``name`` exists, else finishes."""
    conn = _conn()
    conn.hset(TIMES, f"{name}:start", repr(time.time()))
    failing = conn.exists(FAIL_FLAG.format(name))
    conn.hset(TIMES, f"{name}:end", repr(time.time()))
    if failing:
        raise ValueError(f"{name} told to fail")
    return name
