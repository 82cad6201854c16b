"""Run one claimed job in this process and say how it ended; never raises for a task's own error or for a
job that cannot run as it stands (a poison job: it fails with ``InvalidJob`` and the reason)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import random
import time
import traceback
from collections.abc import Callable
from typing import Any

import redis
from rq.job import Retry as RQRetry
from rq.job import _current_job

from config.errors import (
    Ignore,
    InvalidJob,
    Reject,
    RetriesExhausted,
    Retry,
    TaskNotRegistered,
    TaskRevoked,
    TaskTimeout,
)
from tasks.core.context import ProgressWriter, TaskContext
from tasks.core.protocol import DATA_ERRORS, decode_data, encode_exc_string, encode_return_value
from tasks.core.registry import lookup
from tasks.core.states import write_state
from workers.celery_run import celery_request, needs_around, parse_flow, run_around, soft_limit, soft_limited
from workers.current import RunningJob
from workers.jobs import (
    BUCKET_LABELS,
    BUCKETS_S,
    KILLED_MESSAGE,
    STOPPED_MESSAGE,
    UNREACHABLE,
    ClaimedJob,
    HorseKilled,
    Interrupted,
    JobStopped,
    Outcome,
    OutcomeKind,
)

__all__ = [
    "BUCKETS_S",
    "BUCKET_LABELS",
    "UNREACHABLE",
    "ClaimedJob",
    "HorseKilled",
    "Interrupted",
    "JobStopped",
    "Outcome",
    "OutcomeKind",
    "Prepared",
    "call_task",
    "classify_error",
    "ended_by",
    "failed_outcome",
    "job_error",
    "operator_stop",
    "prepare_job",
    "returned",
    "rq_outcome",
    "rq_retry_spec",
    "run_job",
    "run_prepared",
]

NO_LIMIT = contextlib.nullcontext()

ArgumentResolver = Callable[[ClaimedJob, list[Any], dict[str, Any]], tuple[list[Any], dict[str, Any]]]


# A job ready to call (prepare_job): its task, arguments, Celery per-call options and perf_counter start.
Prepared = tuple[Any, list[Any], dict[str, Any], dict[str, Any] | None, float]


def run_job(
    job: ClaimedJob,
    write_progress: ProgressWriter | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    resolve: ArgumentResolver | None = None,
    connection: redis.Redis | None = None,
) -> Outcome:
    """Decode, look up and call the job's task; classify success, retry, failure or interruption.

    With ``connection``, ``rq.get_current_job()`` returns the job inside the task (workers/current.py).
    """
    prepared = prepare_job(job, resolve)
    if isinstance(prepared, Outcome):
        return prepared
    return run_prepared(job, prepared, write_progress, loop, connection)


def prepare_job(job: ClaimedJob, resolve: ArgumentResolver | None = None) -> Outcome | Prepared:
    """The job's task and arguments, or the outcome of a job that cannot run as it stands (poison, data not
    readable, task not registered, or a flow's inputs unreadable while the server is unreachable)."""
    if job.poison:
        return failed_outcome(job, "", InvalidJob(job.poison), 0.0)
    try:
        name, args, kwargs = decode_data(job.data)
    except DATA_ERRORS as exc:
        invalid = InvalidJob(f"job data is not taskrail's JSON format: {exc}")
        invalid.__cause__ = exc
        return failed_outcome(job, "", invalid, 0.0)
    task = lookup(name)
    if task is None:
        error = TaskNotRegistered(
            f"task {name!r} is not registered on this worker, so it was not run; register it with @task "
            "in a module listed in TASKRAIL_IMPORTS"
        )
        return failed_outcome(job, name, error, 0.0)
    started = time.perf_counter()
    celery, in_flow = parse_flow(job.flow) if job.flow else (None, False)
    if in_flow and resolve is not None:
        try:
            args, kwargs = resolve(job, args, kwargs)
        except UNREACHABLE as exc:  # the server, not the job: run it again once it is back
            return Outcome(job, "requeue", name, exc_type="requeued", exc_message=f"reading its inputs: {exc}")
    return task, args, kwargs, celery, started


def run_prepared(
    job: ClaimedJob,
    prepared: Prepared,
    write_progress: ProgressWriter | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    connection: redis.Redis | None = None,
) -> Outcome:
    """Run a prepared job on this thread (an ``async def`` task on ``loop``), with its Celery features if any."""
    task, args, kwargs, celery, started = prepared
    if not needs_around(task, celery):
        return _execute(job, task, args, kwargs, write_progress, loop, connection, started, celery, None)
    run = functools.partial(_execute, job, task, args, kwargs, write_progress, loop, connection, started, celery)
    return run_around(job, task, args, kwargs, celery or {}, run, Outcome)  # type: ignore[no-any-return]


def _execute(
    job: ClaimedJob,
    task: Any,
    args: list[Any],
    kwargs: dict[str, Any],
    write_progress: ProgressWriter | None,
    loop: asyncio.AbstractEventLoop | None,
    connection: redis.Redis | None,
    started: float,
    celery: dict[str, Any] | None,
    soft: float | None,
) -> Outcome:
    """Call the task and say how it ended (``soft``: its soft time limit, if any)."""
    token = _current_job.set(RunningJob(job.id, job.queue, connection)) if connection is not None else None
    try:
        with soft_limit(soft) if soft else NO_LIMIT:  # the usual job: a reusable no-op, no timer
            value = call_task(job, task, args, kwargs, write_progress, connection, celery)
            if value is not None and inspect.isawaitable(value):  # None: a no-op's answer, without a call
                value = (loop or asyncio.new_event_loop()).run_until_complete(
                    soft_limited(value, soft) if soft else value
                )
    except BaseException as exc:
        return ended_by(job, task, exc, time.perf_counter() - started)
    finally:
        if token is not None:
            _current_job.reset(token)
    return returned(job, task, value, time.perf_counter() - started)


def call_task(job: ClaimedJob, task: Any, args: list[Any], kwargs: dict[str, Any],
              write_progress: ProgressWriter | None, connection: redis.Redis | None,
              celery: dict[str, Any] | None) -> Any:  # fmt: skip
    """Call the task's function (a bound one with its ``TaskContext`` first); an ``async def`` task's
    coroutine comes back unawaited."""
    if task.options.bind:
        writer = functools.partial(write_state, connection) if connection is not None else None
        context = TaskContext(task, celery_request(job, task, args, kwargs, celery), write_progress, writer)
        return task.func(context, *args, **kwargs)
    return task.func(*args, **kwargs)


def ended_by(job: ClaimedJob, task: Any, exc: BaseException, duration: float) -> Outcome:
    """How a job ended whose task raised ``exc``; what must propagate (``KeyboardInterrupt``, ...) is raised again."""
    name = task.name
    if isinstance(exc, Interrupted):
        return Outcome(job, "requeue", name, exc_type="interrupted", duration_s=duration)
    if isinstance(exc, (TaskRevoked, Ignore)):
        return Outcome(job, "revoked", name, ttl=job.failure_ttl, exc_type=type(exc).__name__, duration_s=duration)
    if isinstance(exc, (JobStopped, HorseKilled)):
        return operator_stop(job, name, exc, duration)
    if isinstance(exc, Reject):
        if exc.requeue:
            return Outcome(job, "requeue", name, exc_type="rejected", duration_s=duration)
        return failed_outcome(job, name, exc, duration)
    if isinstance(exc, Exception):  # a task's own error: classify, never propagate
        return classify_error(job, task, exc, duration)
    raise exc


def returned(job: ClaimedJob, task: Any, value: Any, duration: float) -> Outcome:
    """How a job ended whose task returned ``value``: success, or RQ's ``Retry`` the task returned."""
    name = task.name
    if isinstance(value, RQRetry):  # RQ's way to ask for another attempt: the server decides (max, interval)
        return Outcome(job, "rq_returned", name, rq_retry_spec(value), job.failure_ttl, duration_s=duration)
    if task.options.ignore_result:
        return Outcome(job, "ok", name, ttl=job.result_ttl, duration_s=duration, value=value)
    try:
        payload = encode_return_value(value)
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nested past about 1000 levels
        return failed_outcome(job, name, exc, duration, f"return value of {name} is not JSON-serializable")
    return Outcome(job, "ok", name, payload, job.result_ttl, duration_s=duration, value=value)


def rq_retry_spec(retry: RQRetry) -> str:
    """A returned RQ ``Retry`` as the FINISH script reads it (kind ``rq_returned``)."""
    return json.dumps({"max": retry.max, "intervals": list(retry.intervals), "at_front": bool(retry.enqueue_at_front)})


def rq_outcome(outcome: Outcome) -> Outcome:
    """The outcome as RQ's Retry and Repeat see it: a failure of a job with RQ retries left becomes kind
    ``rq_retry`` (RQ retries every failure but a stop), a success of one with repeats left ``rq_repeat``."""
    flags = outcome.job.callbacks
    if outcome.kind == "fail" and "r" in flags and not outcome.job.poison:
        outcome.kind = "rq_retry"
    elif outcome.kind == "ok" and "p" in flags:
        outcome.kind = "rq_repeat"
    return outcome


def classify_error(job: ClaimedJob, task: Any, exc: Exception, duration: float) -> Outcome:
    """Retry (per the task's options and attempts left) or fail, for an error a task raised."""
    opts = task.options
    requested = exc if isinstance(exc, Retry) else None
    retryable = requested is not None or (
        isinstance(exc, opts.autoretry_for) and not isinstance(exc, opts.dont_autoretry_for)
    )
    limit = opts.max_retries if requested is None or requested.max_retries is False else requested.max_retries
    shown = requested.exc if requested is not None and requested.exc is not None else exc
    if retryable and (limit is None or job.retries < limit):
        countdown = requested.countdown if requested is not None else None
        delay = countdown if countdown is not None else opts.backoff_s(job.retries, random.random())
        return Outcome(
            job, "retry", task.name, _exc_string(shown), 0, time.time() + delay,
            type(shown).__name__, _text(shown), duration, shown,
        )  # fmt: skip
    if retryable:
        exhausted = RetriesExhausted(
            f"{task.name} failed after {job.retries} retries: {type(shown).__name__}: {_text(shown)}"
        )
        outcome = failed_outcome(job, task.name, exhausted if shown is requested else shown, duration)
        outcome.exc_message = str(exhausted)
        return outcome
    return failed_outcome(job, task.name, shown, duration)


def operator_stop(job: ClaimedJob, name: str, stop: BaseException, duration: float) -> Outcome:
    """The outcome of a job an operator stopped through RQ's commands: stop-job (``stopped``, in the
    failed registry, never retried) or kill-horse (failed, as RQ fails a job whose work-horse died)."""
    if isinstance(stop, JobStopped):
        payload = encode_exc_string(STOPPED_MESSAGE)
        return Outcome(job, "stopped", name, payload, job.failure_ttl, 0.0, "JobStopped", STOPPED_MESSAGE, duration)
    return failed_outcome(job, name, HorseKilled(KILLED_MESSAGE), duration)


def job_error(job: ClaimedJob, exc: BaseException) -> Outcome:
    """The outcome of a job whose handling broke outside its task's own code: it fails, the worker goes on."""
    return failed_outcome(job, "", exc, 0.0, "the worker could not run this job")


def failed_outcome(job: ClaimedJob, name: str, exc: BaseException, duration: float, context: str = "") -> Outcome:
    """The failure of ``job`` with ``exc`` (its message prefixed by ``context``), traceback included."""
    message = f"{context}: {_text(exc)}" if context else _text(exc)
    return Outcome(
        job, "fail", name, _exc_string(exc), job.failure_ttl, 0.0, type(exc).__name__, message, duration, exc
    )


def _text(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in when the exception cannot even be shown."""
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__} that cannot be shown: its __str__ raised>"


def _exc_string(exc: BaseException) -> str:
    """RQ's result encoding of an exception's traceback. A timeout's last line names RQ's class first
    (``rq.timeouts.JobTimeoutException (TaskTimeout): ...``): RQ's users and tools look for it there."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, TaskTimeout):
        own = f"{type(exc).__module__}.{type(exc).__qualname__}:"
        head, found, tail = text.rpartition(own)
        if found:
            text = f"{head}rq.timeouts.JobTimeoutException ({type(exc).__qualname__}):{tail}"
    return encode_exc_string(text)
