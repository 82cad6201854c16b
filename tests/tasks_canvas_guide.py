"""The tasks of Celery's Canvas guide (docs/userguide/canvas.rst), as the guide defines them, with
``from tasks import task`` for Celery's ``@app.task``; a few record what they were called with in Redis.
Imported by workers through TASKRAIL_IMPORTS=tests.tasks_canvas_guide (tests/test_canvas_guide.py).
"""

from __future__ import annotations

import os
from typing import Any

import redis

from tasks import AsyncResult, task


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@task(queue="canvas")
def add(x: int, y: int) -> int:
    return x + y


@task(queue="canvas")
def mul(x: int, y: int) -> int:
    return x * y


@task(queue="canvas")
def xsum(numbers: list[int]) -> int:
    return sum(numbers)


@task(queue="canvas")
def tsum(numbers: list[int]) -> int:
    return sum(numbers)


@task(queue="canvas")
def raising_task(*args: Any) -> None:
    raise ValueError("something something")


@task(queue="canvas")
def log_result(value: Any) -> Any:
    _conn().rpush("log_result", repr(value))
    return value


@task(queue="canvas")
def log_error(task_id: str) -> None:
    """The guide's old-style errback: it gets the failed task's id."""
    result = AsyncResult(task_id)
    result.get(propagate=False, disable_sync_subtasks=False)
    _conn().rpush("log_error", f"{task_id} {type(result.result).__name__}")


@task(queue="canvas")
def on_chain_error(request: Any, exc: BaseException, traceback: str) -> None:
    """A Celery 4+ errback: ``(request, exc, traceback)``, run in the worker right after the failure."""
    _conn().rpush("on_chain_error", f"{request.id} {exc}")


@task(queue="canvas")
def create_user(username: str, first: str, last: str, email: str) -> str:
    return username


@task(queue="canvas")
def import_contacts(username: str) -> str:
    return f"contacts of {username}"


@task(queue="canvas")
def send_welcome_email(username: str) -> str:
    return f"welcome {username}"
