"""Tasks the Celery-compatibility tests run through real workers (TASKRAIL_IMPORTS=tests.tasks_celery)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import types
from typing import Any

import redis

from tasks import Ignore, Reject, SoftTimeLimitExceeded, Task, current_task, shared_task, task


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


class Flaky(Exception):
    """A transient error."""


def _record(key: str, value: Any) -> None:
    _conn().rpush(key, json.dumps(value))


class HookedTask(Task):
    """Celery's ``base=`` pattern: a shared resource on the class and the hooks, recorded in Redis."""

    db = "the-db"

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        _record(f"hooks:{args[0]}", ["before_start", task_id])

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        _record(f"hooks:{args[0]}", ["on_success", retval])

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        _record(f"hooks:{args[0]}", ["on_failure", type(exc).__name__, "Traceback" in einfo.traceback])

    def on_retry(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        _record(f"hooks:{args[0]}", ["on_retry", type(exc).__name__])

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        _record(f"hooks:{args[0]}", ["after_return", status])


class RetryingBase(Task):
    """Options as class attributes, as Celery's Tasks guide shows for autoretry."""

    autoretry_for = (Flaky,)
    max_retries = 2
    default_retry_delay = 0.05


@task(base=HookedTask, bind=True, queue="celery")
def hooked(self: Any, key: str, fail: bool) -> str:
    if fail:
        raise ValueError("asked to fail")
    return f"{self.db}:{key}"


@task(base=HookedTask, bind=True, queue="celery", max_retries=1, default_retry_delay=0.05)
def hooked_retry(self: Any, key: str) -> int:
    if self.request.retries == 0:
        raise self.retry(exc=Flaky("first"))
    return self.request.retries


@task(base=RetryingBase, queue="celery")
def class_options(key: str) -> int:
    _conn().rpush(key, 1)
    raise Flaky("always")


@shared_task(
    queue="celery", acks_late=True, reject_on_worker_lost=True, track_started=True, default_retry_delay=0.05,
    autoretry_for=(Flaky,), retry_kwargs={"max_retries": 2}, throws=(KeyError,), serializer="json",
)  # fmt: skip
def django_style(key: str) -> int:
    attempt = _conn().rpush(key, 1)
    if attempt < 3:
        raise Flaky(f"attempt {attempt}")
    return attempt


@task(queue="celery", soft_time_limit=0.5, time_limit=20)
def soft_sleeper(key: str) -> str:
    try:
        time.sleep(15)
    except SoftTimeLimitExceeded:
        _conn().rpush(key, "cleaned up")
        raise
    return "slept"


@task(queue="celery", soft_time_limit=0.5)
async def async_soft_sleeper() -> str:
    await asyncio.sleep(15)
    return "slept"


@task(queue="celery")
def ignored() -> None:
    raise Ignore()


@task(queue="celery", autoretry_for=(Reject,))
def rejected() -> None:
    raise Reject("bad input", requeue=False)


@task(queue="celery", bind=True, max_retries=None, default_retry_delay=0.02)
def retry_forever(self: Any, key: str, until: int) -> int:
    attempt = _conn().rpush(key, 1)
    if attempt < until:
        raise self.retry(exc=Flaky(f"attempt {attempt}"))
    return attempt


@task(queue="celery", bind=True, max_retries=1)
def retry_then_raise(self: Any, with_exc: bool) -> None:
    raise self.retry(exc=KeyError("gone") if with_exc else None, countdown=0)


@task(queue="celery", bind=True)
def request_fields(self: Any) -> dict[str, Any]:
    r = self.request
    return {"id": r.id, "hostname": r.hostname, "delivery_info": r.delivery_info, "called_directly": r.called_directly,
            "is_eager": r.is_eager, "root_id": r.root_id, "correlation_id": r.correlation_id, "headers": r.headers,
            "retries": r.retries, "name": self.name}  # fmt: skip


@task(queue="celery")
def waits_inside() -> int:
    return int(lookup_key.delay("a").get(timeout=5))


@task(queue="celery")
def add(x: int, y: int) -> int:
    return x + y


@task(queue="celery")
def record(value: Any, key: str) -> None:
    _record(key, value)


@task(queue="celery")
def on_error(request: Any, exc: BaseException, traceback: str, key: str) -> None:
    """Celery 4+'s errback: runs in the worker with the request, the exception and the traceback."""
    _record(key, [request.id, type(exc).__name__, str(exc), "Traceback" in traceback])


@task(queue="celery")
def old_errback(task_id: str, key: str) -> None:
    """The old one-argument errback: enqueued with the failed task's id."""
    _record(key, task_id)


_EAGER_ATTEMPTS: dict[str, int] = {}


@task(queue="celery", bind=True, max_retries=2)
def counts_retries(self: Any, key: str, until: int) -> int:
    """Retries without any server (for eager mode): counts attempts in this process."""
    _EAGER_ATTEMPTS[key] = _EAGER_ATTEMPTS.get(key, 0) + 1
    if _EAGER_ATTEMPTS[key] < until:
        raise self.retry(exc=Flaky(f"attempt {_EAGER_ATTEMPTS[key]}"))
    return _EAGER_ATTEMPTS[key]


@task(queue="celery")
def who_am_i() -> list[Any]:
    request = current_task.request
    return [bool(current_task), request.id if request else None, current_task.name, request.args if request else None]


@task(queue="celery")
def rejects_once(key: str) -> int:
    """Rejects with requeue=True on its first run, then succeeds."""
    runs = _conn().rpush(key, 1)
    if runs == 1:
        raise Reject("not yet", requeue=True)
    return runs
