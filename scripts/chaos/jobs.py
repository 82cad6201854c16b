"""The chaos run's tasks: each counts its runs to the end in ``chaos:executions`` and returns a value of its inputs.

Workers import this module (``TASKRAIL_IMPORTS=scripts.chaos.jobs``); it imports nothing of the driver.
The counts go straight to the server (``CHAOS_RECORD_URL``), not through the proxy, so a lost reply
never fails a job; a restarting server is waited out by the client's retries.
"""

from __future__ import annotations

import functools
import os
import time

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from tasks import task
from tasks.core.context import TaskContext

__all__ = ["EXECUTIONS", "QUEUE", "Flake", "flaky", "part", "plain", "total"]

QUEUE = "chaos"
EXECUTIONS = "chaos:executions"  # hash: job id -> times the job ran to its return


class Flake(Exception):
    """Raised by ``flaky`` on the attempts meant to fail."""


@functools.cache
def _recorder() -> redis.Redis:
    url = os.environ.get("CHAOS_RECORD_URL") or os.environ["REDIS_URL"]
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 60)  # about a minute: longer than a server restart
    return redis.Redis.from_url(url, retry=retry, retry_on_error=[RedisConnectionError, RedisTimeoutError])


def _ran(job_id: str | None, work_ms: float) -> None:
    if work_ms > 0:
        time.sleep(work_ms / 1000)
    if job_id is not None:
        _recorder().hincrby(EXECUTIONS, job_id, 1)


def plain_value(a: int, b: int) -> int:
    return a * 31 + b


@task(queue=QUEUE, bind=True, max_retries=0)
def plain(self: TaskContext, a: int, b: int, work_ms: float = 0) -> int:
    """A plain job (also sent with a priority or a countdown)."""
    _ran(self.request.id, work_ms)
    return plain_value(a, b)


@task(queue=QUEUE, bind=True, autoretry_for=(Flake,), max_retries=5, retry_backoff=0.05, retry_backoff_max=1)
def flaky(self: TaskContext, a: int, fails: int, work_ms: float = 0) -> int:
    """Raises ``Flake`` on its first ``fails`` attempts, then returns ``a * 7``."""
    if self.request.retries < fails:
        raise Flake(f"attempt {self.request.retries + 1} of job {self.request.id} fails on purpose")
    _ran(self.request.id, work_ms)
    return a * 7


@task(queue=QUEUE, bind=True, max_retries=0)
def part(self: TaskContext, a: int, work_ms: float = 0) -> int:
    """A chord child: ``a * 3``."""
    _ran(self.request.id, work_ms)
    return a * 3


@task(queue=QUEUE, bind=True, max_retries=0)
def total(self: TaskContext, values: list[int]) -> int:
    """A chord callback: the sum of its children's results."""
    _ran(self.request.id, 0)
    return sum(values)
