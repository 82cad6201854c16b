"""Tasks used by the canvas tests (imported by workers through TASKRAIL_IMPORTS=tests.tasks_canvas)."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from tasks import task


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@task(queue="canvas")
def add(a: int, b: int) -> int:
    return a + b


@task(queue="canvas")
def mul(a: int, b: int) -> int:
    return a * b


@task(queue="canvas")
def ident(value: Any) -> Any:
    return value


@task(queue="canvas")
def square(x: int) -> int:
    return x * x


@task(queue="canvas")
def fail_if(x: int, bad: int) -> int:
    """Returns x, or raises ValueError when x equals ``bad``."""
    if x == bad:
        raise ValueError(f"{x} is bad")
    return x


@task(queue="canvas")
def total(values: list[int]) -> int:
    return sum(values)


@task(queue="canvas")
def collect(values: list[Any]) -> list[Any]:
    """Returns what it received, failures (TaskFailed) shown as 'error:<type>'."""
    return [v if not isinstance(v, Exception) else f"error:{getattr(v, 'exc_type', type(v).__name__)}" for v in values]


@task(queue="canvas")
def collect_ignoring(values: list[Any], failures: list[dict[str, Any]]) -> dict[str, Any]:
    return {"values": values, "failures": failures}


@task(queue="canvas")
def counted_total(values: list[int], counter: str) -> int:
    """Sums ``values`` and counts its own executions in Redis under ``counter``."""
    _conn().incr(counter)
    return sum(values)


@task(queue="canvas")
def slow_square(x: int, pause_s: float) -> int:
    time.sleep(pause_s)
    return x * x


@task(queue="canvas")
def record(value: Any, key: str) -> Any:
    """Appends ``value`` to a Redis list (to see that a step ran) and returns it."""
    _conn().rpush(key, repr(value))
    return value


@task(queue="canvas", result_ttl=2)
def short_lived(x: int, pause_s: float = 0.0) -> int:
    """Keeps its result 2 s only (unless a flow still needs it)."""
    time.sleep(pause_s)
    return x
