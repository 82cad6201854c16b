"""Tasks used by the core end-to-end tests (imported by workers through TASKRAIL_IMPORTS)."""

from __future__ import annotations

import os
import time

import redis

from tasks import task


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


class Flaky(Exception):
    """A transient error the retry tests raise."""


@task(queue="core")
def add(a: int, b: int) -> int:
    return a + b


@task(queue="core")
def boom(message: str) -> None:
    raise ValueError(message)


@task(queue="core", autoretry_for=(Flaky,), max_retries=3, retry_backoff=0.5, retry_jitter=False)
def flaky_until(key: str, succeed_on: int) -> int:
    """Fails with Flaky until its attempt number ``succeed_on``; records each attempt's time."""
    conn = _conn()
    conn.rpush(key, time.time())
    attempt = conn.llen(key)
    if attempt < succeed_on:
        raise Flaky(f"attempt {attempt} fails")
    return attempt


@task(queue="core", bind=True)
def stepper(self, steps: int, pause_s: float) -> int:
    for step in range(steps):
        self.update_progress(100 * step / steps, f"step {step + 1} of {steps}")
        time.sleep(pause_s)
    return steps


@task(queue="core", bind=True, max_retries=2)
def asks_retry(self, key: str) -> int:
    attempt = _conn().incr(key)
    if attempt < 2:
        self.retry(countdown=0.2)
    return self.request.attempts


@task(queue="core")
def touch(path: str) -> str:
    with open(path, "w") as fh:
        fh.write("ran")
    return path


@task(queue="core", time_limit=1)
def sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


@task(queue="core")
async def async_add(a: int, b: int) -> int:
    return a + b


@task(queue="core")
def die_hard(key: str) -> str:
    """Counts its attempts, then kills its own process (a crash no Python code can catch)."""
    import signal

    _conn().incr(key)
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


@task(queue="core")
def whoami() -> int:
    return os.getpid()


@task(queue="core", ignore_result=True)
def fire_and_forget(x: int) -> int:
    return x * 2


@task(queue="core", result_ttl=30)
def short_lived(x: int) -> int:
    return x


@task(queue="core")
def nest(levels: int) -> list:
    """A return value nested ``levels`` deep: past about 1000, encoding it raises RecursionError."""
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be shown")


@task(queue="core")
def raise_unprintable() -> None:
    raise Unprintable()
