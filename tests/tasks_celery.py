"""Tasks the Celery-compatibility tests run through real workers (TASKRAIL_IMPORTS=tests.tasks_celery)."""

from __future__ import annotations

import os
import types
from typing import Any

import redis

from tasks import task


class Overdrawn(Exception):
    """A task module's own exception with a constructor of its own."""

    def __init__(self, account: str, amount: int = 0) -> None:
        super().__init__(account, amount)
        self.account = account
        self.amount = amount


@task(queue="celery")
def lookup_key(key: str) -> int:
    return {"a": 1}[key]


@task(queue="celery")
def overdraw(account: str) -> None:
    raise Overdrawn(account, 50)


@task(queue="celery")
def stdlib_error() -> None:
    import json

    json.loads("{not json")


@task(queue="celery")
def foreign_error() -> None:
    """Raises a class from a module that exists only in the worker (the producer must not import it)."""
    module = types.ModuleType("worker_only_errors")
    exec("class Secret(Exception):\n    pass\n", module.__dict__)
    raise module.Secret("from a module the producer never saw")


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def _wait_for_key(key: str, timeout: float = 20.0) -> None:
    """Block until the test pushes to ``key`` (a real wait on the server, not a sleep)."""
    if _conn().blpop([key], timeout=timeout) is None:
        raise TimeoutError(f"nobody pushed {key}")


@task(queue="celery", bind=True)
def download(self: Any, total: int, gate: str) -> dict[str, int]:
    """Celery's custom-state example: report PROGRESS with a meta dict, then finish."""
    self.update_state(state="PROGRESS", meta={"current": 1, "total": total})
    _wait_for_key(gate)
    return {"current": total, "total": total}
