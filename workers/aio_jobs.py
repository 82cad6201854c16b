"""One job in ``pool: asyncio`` (workers/aio.py): an ``async def`` task awaited on the worker's event loop,
and the interrupter that stops it there.

The steps are the thread modes' own (``workers.runner``: prepare, call, classify; ``workers.celery_run``:
Celery's hooks and signals around the call); only the wait differs: the coroutine is awaited by the
job's asyncio task instead of run to completion by a loop of its own. ``rq.get_current_job()`` is a
context variable, and each asyncio task has its own context, so every job sees its own.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable
from typing import Any

import redis
from rq.job import _current_job

from tasks.core.context import ProgressWriter
from workers.celery_run import begin_around, end_around, needs_around, soft_limit_s, soft_limited
from workers.current import RunningJob
from workers.interrupts import Interrupter, Slot, StopReason, stop_error
from workers.runner import ClaimedJob, Outcome, Prepared, call_task, ended_by, returned

__all__ = ["AsyncInterrupter", "is_async", "run_async"]


def is_async(prepared: Prepared) -> bool:
    """Whether the prepared job's task is an ``async def`` function (run on the loop, not on a pool thread)."""
    return inspect.iscoroutinefunction(prepared[0].func)


class AsyncInterrupter(Interrupter):
    """Stops jobs of ``pool: asyncio``: an async job's asyncio task is cancelled on the loop and the stop's
    reason is raised at its current ``await``; a plain function on a pool thread (and an RQ callback
    there) gets the asynchronous exception, as in threads mode."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}  # slot index -> the asyncio task running its job

    def stop(self, slot: Slot, reason: StopReason) -> bool:
        task = self.tasks.get(slot.index)
        if slot.thread_ident or task is None or self.loop is None:
            return super().stop(slot, reason)
        with slot.lock:
            if not slot.active:
                return False
            slot.pending = reason
        self.loop.call_soon_threadsafe(task.cancel)
        return True


async def run_async(job: ClaimedJob, prepared: Prepared, write_progress: ProgressWriter | None,
                    connection: redis.Redis, slot: Slot) -> Outcome:  # fmt: skip
    """Run a prepared ``async def`` job on this loop, with its Celery features if any (as ``run_prepared``)."""
    task, args, kwargs, celery, _ = prepared
    if not needs_around(task, celery):
        return await _execute(job, prepared, write_progress, connection, None, slot)
    celery = celery or {}
    early = begin_around(job, task, args, kwargs, celery, Outcome)
    if early is not None:
        return early  # type: ignore[no-any-return]
    outcome = await _execute(job, prepared, write_progress, connection, soft_limit_s(task, celery), slot)
    return end_around(job, task, args, kwargs, celery, outcome)  # type: ignore[no-any-return]


async def _execute(job: ClaimedJob, prepared: Prepared, write_progress: ProgressWriter | None,
                   connection: redis.Redis, soft: float | None, slot: Slot) -> Outcome:  # fmt: skip
    """Call the task, await its coroutine and say how it ended (``runner._execute``'s steps, awaited)."""
    task, args, kwargs, celery, started = prepared
    token = _current_job.set(RunningJob(job.id, job.queue, connection))
    try:
        value = call_task(job, task, args, kwargs, write_progress, connection, celery)
        if inspect.isawaitable(value):
            value = await _stoppable(soft_limited(value, soft) if soft else value, slot)
    except BaseException as exc:
        return ended_by(job, task, exc, time.perf_counter() - started)
    finally:
        _current_job.reset(token)
    return returned(job, task, value, time.perf_counter() - started)


async def _stoppable(awaitable: Awaitable[Any], slot: Slot) -> Any:
    """Await the task's coroutine; a cancel the interrupter sent becomes its stop reason (``TaskTimeout``,
    ``TaskRevoked``, ``Interrupted``, ...), raised here, as a signal raises it in a thread mode's job."""
    try:
        return await awaitable
    except asyncio.CancelledError:
        reason = slot.pending
        if reason is None:  # not a stop of ours: the loop itself is going away
            raise
        raise cancelled_stop(slot, reason) from None


def cancelled_stop(slot: Slot, reason: StopReason) -> BaseException:
    """The stop error for a cancel the interrupter sent; the asyncio task is uncancelled, so the job's
    remaining steps (Celery's hooks, callbacks) can still await."""
    slot.pending = None
    current = asyncio.current_task()
    if current is not None:
        current.uncancel()
    return stop_error(slot, reason)
