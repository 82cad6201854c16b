"""Tasks of the dead-letter, events, metrics and Sentry tests (queue ``obs``)."""

from __future__ import annotations

import os
import time

import redis

from tasks import task


class Flaky(Exception):
    """A transient error: retried."""


@task(queue="obs")
def double(x: int) -> int:
    return 2 * x


@task(queue="obs")
def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "rested"


@task(queue="obs")
def charge(card_number: str, amount: int, api_key: str = "") -> None:
    """Fails, with a secret among its arguments."""
    raise ValueError(f"card declined for amount {amount}")


@task(queue="obs", autoretry_for=(Flaky,), max_retries=1, retry_backoff=0.1, retry_jitter=False)
def fails_once(key: str) -> int:
    """Raises Flaky on its first attempt only."""
    attempt = int(redis.Redis.from_url(os.environ["REDIS_URL"]).incr(key))
    if attempt == 1:
        raise Flaky("first attempt fails")
    return attempt


@task(queue="obs", bind=True)
def steps(self, count: int) -> int:
    for step in range(count):
        self.update_progress(100 * (step + 1) / count, f"step {step + 1}")
    return count


@task(queue="obs")
def heals(flag_path: str) -> str:
    """Fails until ``flag_path`` exists; then succeeds."""
    if not os.path.exists(flag_path):
        raise RuntimeError(f"{flag_path} is missing")
    return "healed"
