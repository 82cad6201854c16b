"""Tasks and callbacks of the RQ job API tests (tests/test_rq_job_api.py), imported by workers through TASKRAIL_IMPORTS."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import redis
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from tasks import register_callback, task


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def _note(job: Any) -> str:
    """Add to the running job's meta the RQ way and report what the job object says about itself."""
    job.meta["seen"] = job.meta.get("seen", 0) + 1
    job.save_meta()
    return json.dumps({"id": job.id, "origin": job.origin, "func": job.func_name, "pid": os.getpid()})


@task(queue="rqapi")
def current(key: str) -> str:
    _conn().set(key, _note(get_current_job()))
    return "ok"


@task(queue="rqapi")
def replace_meta(value: int) -> None:
    """Replace the meta before anything loads it, as RQ's fixture save_key_ttl does."""
    job = get_current_job()
    job.connection.ping()
    job.meta = {"replaced": value}
    job.save_meta()


@task(queue="rqapi")
async def current_async(key: str) -> str:
    await asyncio.sleep(0)
    _conn().set(key, _note(get_current_job()))
    return "ok"


@task(queue="rqapi")
def mul(a: int, b: int) -> int:
    return a * b


@task(queue="rqapi")
def task_for_decorator(a: int, b: int) -> int:
    """Only for the @rq.decorators.job test: RQ's decorator replaces its ``delay``."""
    return a * b


@task(queue="rqapi", name="rqapi.renamed")
def renamed(a: int) -> int:
    return a + 1


@task(queue="rqapi", time_limit=1)
def catch_timeout(key: str) -> str:
    try:
        time.sleep(10)
    except JobTimeoutException as exc:
        _conn().set(key, type(exc).__name__)
        return "caught"
    return "not stopped"


@task(queue="rqapi")
def fail(message: str) -> None:
    raise ValueError(message)


@task(queue="rqapi")
def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "rested"


def _record(connection: redis.Redis, *entry: Any) -> None:
    connection.rpush("callbacks", json.dumps(entry))


@register_callback
def meta_seen(job: Any, connection: redis.Redis, result: Any) -> None:
    """An on_success that reads the meta the task saved while it ran."""
    _record(connection, "meta", job.id, job.meta.get("seen"))


@register_callback
def id_only(job: Any, connection: redis.Redis, result: Any) -> None:
    """An on_success that reads nothing but the job's id and status; records whether its hash is still unread."""
    _record(connection, "id-only", job.id, result, job.get_status(refresh=False), "_tr_unloaded" in vars(job))


@register_callback
def on_ok(job: Any, connection: redis.Redis, result: Any) -> None:
    _record(connection, "success", job.id, result, job.func_name, job.get_status(refresh=False))


@register_callback
def on_fail(job: Any, connection: redis.Redis, exc_type: type, value: BaseException, tb: Any) -> None:
    _record(connection, "failure", job.id, exc_type.__name__, str(value))


@register_callback
def on_stop(job: Any, connection: redis.Redis) -> None:
    _record(connection, "stopped", job.id)


@register_callback
def slow_callback(job: Any, connection: redis.Redis, result: Any) -> None:
    time.sleep(10)
    _record(connection, "slow", job.id)


@register_callback
def raising_callback(job: Any, connection: redis.Redis, result: Any) -> None:
    raise RuntimeError("the callback broke")


@register_callback
def raising_failure_callback(job: Any, connection: redis.Redis, exc_type: type, value: BaseException, tb: Any) -> None:
    raise RuntimeError("the failure callback broke")


@task(queue="rqapi")
def task_as_callback(job: Any, connection: redis.Redis, result: Any) -> None:
    _record(connection, "task-callback", job.id, result)


def not_registered(job: Any, connection: redis.Redis, result: Any) -> None:
    """Importable by the worker, but never registered: it must not run."""
    _record(connection, "unregistered", job.id)
