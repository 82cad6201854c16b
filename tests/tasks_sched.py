"""Tasks for the scheduling tests (imported by workers through TASKRAIL_IMPORTS=tests.tasks_sched).

Each records what it saw in Redis, so a test can check order, start times and overlap afterwards.
"""

from __future__ import annotations

import os
import time

import redis

from tasks import task


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@task(queue="default")
def mark(tag: str, pause_s: float = 0.0) -> str:
    """Append ``tag`` to the list ``order`` as the job starts."""
    conn = _conn()
    conn.rpush("order", tag)
    conn.rpush("order_times", repr(time.time()))
    if pause_s:
        time.sleep(pause_s)
    return tag


@task(queue="limited", rate_limit="5/s")
def limited(n: int) -> int:
    """Five starts per second across all workers; records each start time."""
    _conn().rpush("starts", f"{time.time()!r} {n}")
    return n


@task(queue="limited", rate_limit="2/s", limit_key="customer")
def per_customer(customer: str, n: int) -> int:
    """Two starts per second for each customer."""
    _conn().rpush(f"starts:{customer}", repr(time.time()))
    return n


@task(queue="limited", concurrency_limit=2)
def capped(pause_s: float, hold_key: str = "") -> int:
    """At most two run at once anywhere; records how many ran at each start.

    With ``hold_key``, runs for up to ``pause_s`` while that key exists.
    """
    conn = _conn()
    running = conn.incr("running")
    conn.rpush("running_seen", running)
    deadline = time.monotonic() + pause_s
    while time.monotonic() < deadline and (not hold_key or conn.exists(hold_key)):
        time.sleep(0.02)
    conn.decr("running")
    return int(running)


@task(queue="default", unique=True)
def unique_job(key: str) -> str:
    _conn().rpush(f"ran:{key}", "1")
    return key


@task(queue="default", unique=True, max_retries=0)
def unique_failing(key: str) -> None:
    _conn().rpush(f"ran:{key}", "1")
    raise ValueError(f"{key} fails on purpose")


@task(queue="default", unique=True, unique_mode="throttle", unique_ttl_s=2)
def throttled_save(key: str, value: str) -> str:
    """``save`` with its unique mode declared on the task (docs/scheduling.md#unique-jobs)."""
    return save(key, value)


@task(queue="default")
def save(key: str, value: str) -> str:
    """Record ``value`` under ``key`` (for throttle and debounce)."""
    _conn().rpush(f"saved:{key}", value)
    return value


@task(queue="default")
def tick(name: str) -> float:
    """Record the time a periodic or delayed job ran."""
    now = time.time()
    _conn().rpush(f"ticks:{name}", repr(now))
    return now
