"""The plain job functions ``taskrail bench`` gives RQ; ``tests/bench_tasks.py`` registers the same ones for taskrail.

Kept apart from taskrail on purpose: RQ's default worker imports the job's module in every forked
child, so this module imports nothing heavier than what RQ has already loaded.
"""

from __future__ import annotations

import functools
import os
import time

import redis

LATENCY_KEY = "bench:latency"  # list of seconds from enqueue to start, one entry per latency job
IO_SECONDS = 0.02


@functools.cache
def _conn() -> redis.Redis:
    # Opened lazily in the process that runs the job (RQ's default worker forks one per job).
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def noop() -> None:
    """Does nothing: what is measured is the framework's cost per job."""


def sleep_io() -> None:
    """Stands for an I/O-bound job: 20 ms waiting on something else."""
    time.sleep(IO_SECONDS)


def record_start(enqueued_at: float) -> None:
    """Records how long ago the producer enqueued this job (both run on this machine's clock)."""
    _conn().rpush(LATENCY_KEY, time.time() - enqueued_at)


PLAIN = {"noop": noop, "io": sleep_io, "latency": record_start}
