"""Tasks of tests/test_asyncio_mode.py (``pool: asyncio``), imported by workers through TASKRAIL_IMPORTS.

The ``async def`` tasks do their I/O through ``redis.asyncio`` on the worker's event loop, as a user's
would; ``blocking`` is a plain function, which the mode runs on a pool thread.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from typing import Any

import redis
import redis.asyncio
from rq import Retry, get_current_job

from tasks import register_callback, task

QUEUE = "aio"
RUNS_KEY = "aio:runs"  # hash: job id -> how many times it ran
EVENTS_KEY = "aio:events"  # list of "what:job id" entries the tasks, callbacks and signals record


@functools.cache
def _aconn(loop: asyncio.AbstractEventLoop) -> redis.asyncio.Redis:
    """One client per event loop; a bounded pool, however many jobs run at once."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(os.environ["REDIS_URL"], max_connections=16)
    return redis.asyncio.Redis(connection_pool=pool)


async def _note(what: str) -> None:
    await _aconn(asyncio.get_running_loop()).rpush(EVENTS_KEY, what)


@task(queue=QUEUE)
async def count(i: int, seconds: float = 0.05) -> int:
    """Wait ``seconds`` on the loop, then count one run of this job (by the id ``get_current_job`` gives)."""
    await asyncio.sleep(seconds)
    job = get_current_job()
    assert job is not None
    await _aconn(asyncio.get_running_loop()).hincrby(RUNS_KEY, job.id, 1)
    return i


@task(queue=QUEUE, bind=True)
async def whoami(self: Any, seconds: float) -> list[str]:
    """The job id seen by ``self.request`` and by ``get_current_job`` after an await: each job its own."""
    await asyncio.sleep(seconds)
    job = get_current_job()
    return [self.request.id, job.id if job is not None else ""]


@task(queue=QUEUE, time_limit=1, max_retries=0)
async def hang(seconds: float) -> str:
    """Await far longer than its one-second time limit; records whether it was cancelled."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        await _note("cancelled:hang")
        raise
    return "woke"


@task(queue=QUEUE)
async def nap(seconds: float, tag: str = "") -> str:
    """Await ``seconds``, then record ``done:<tag>``."""
    await asyncio.sleep(seconds)
    await _note(f"done:{tag}")
    return tag


@task(queue=QUEUE)
def blocking(gate: str) -> str:
    """A plain function that blocks its thread until the test pushes to ``gate`` (30 s at most): the mode runs it
    on a pool thread, never on the loop."""
    redis.Redis.from_url(os.environ["REDIS_URL"]).blpop([gate], timeout=30)
    return threading.current_thread().name


@task(queue=QUEUE)
async def hold_loop(gate: str) -> str:
    """Let the loop turn, record ``holding``, then block the loop itself until the test pushes to ``gate`` (30 s at
    most): meanwhile no other job of the worker runs, and only its other threads act."""
    await asyncio.sleep(0.05)
    await _note("holding")
    redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=40).blpop([gate], timeout=30)  # not redis-py's 5 s
    return "released"


@task(queue=QUEUE)
async def loop_thread() -> str:
    """The name of the thread an ``async def`` task runs on (the worker's event loop)."""
    await asyncio.sleep(0)
    return threading.current_thread().name


@task(queue=QUEUE)
async def flaky(key: str, failures: int) -> str:
    """Fail the first ``failures`` runs (RQ's Retry retries it), then succeed."""
    if await _aconn(asyncio.get_running_loop()).incr(key) <= failures:
        raise ZeroDivisionError(f"run of {key} fails")
    return "ok"


@task(queue=QUEUE)
async def again(key: str) -> Retry | str:
    """Return RQ's ``Retry`` on the first run, succeed on the next."""
    if await _aconn(asyncio.get_running_loop()).incr(key) == 1:
        return Retry(max=1)
    return "second"


@register_callback
def on_ok(job: Any, connection: redis.Redis, result: Any) -> None:
    connection.rpush(EVENTS_KEY, f"success-callback:{job.id}:{result}")


@register_callback
def on_fail(job: Any, connection: redis.Redis, exc_type: type, value: BaseException, tb: Any) -> None:
    connection.rpush(EVENTS_KEY, f"failure-callback:{job.id}:{exc_type.__name__}")
