"""The tasks ``taskrail bench --long-run`` pushes through its workers: one of each kind of job in its mix.

Workers import this module through ``TASKRAIL_IMPORTS=tests.longrun_tasks``. Plain, prioritized and
delayed jobs are ``longrun.plain`` (the options are the enqueue's); ``longrun.flaky`` fails its first
attempt and succeeds on the retry; ``longrun.limited`` runs under a rate limit per ``key`` (a hundred
keys in turn, each its own sliding window); ``longrun.part`` and ``longrun.total`` make the chords.
"""

from __future__ import annotations

from typing import Any

from tasks import task

QUEUE = "longrun"


class FirstAttempt(Exception):
    """Raised by ``longrun.flaky`` on its first attempt, to be retried."""


@task(queue=QUEUE, name="longrun.plain")
def plain() -> None:
    return None


@task(queue=QUEUE, name="longrun.flaky", bind=True, autoretry_for=(FirstAttempt,), max_retries=2,
      default_retry_delay=0.5)  # fmt: skip
def flaky(self: Any) -> int:
    if self.request.retries == 0:
        raise FirstAttempt("the first attempt fails, the retry succeeds")
    return int(self.request.retries)


@task(queue=QUEUE, name="longrun.limited", rate_limit="3/s", limit_key="key")
def limited(key: str) -> str:
    return key


@task(queue=QUEUE, name="longrun.part")
def part(i: int) -> int:
    return i


@task(queue=QUEUE, name="longrun.total")
def total(parts: list[int]) -> int:
    return sum(parts)


TASKS = ("longrun.plain", "longrun.flaky", "longrun.limited", "longrun.part", "longrun.total")

__all__ = ["QUEUE", "TASKS", "flaky", "limited", "part", "plain", "total"]
