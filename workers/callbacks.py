"""RQ job callbacks (``on_success``, ``on_failure``, ``on_stopped``), run by the worker where RQ's runs them.

RQ keeps a callback's dotted name and timeout on the job hash (``success_callback_name``,
``success_callback_timeout``, ...) and its own worker imports that name. taskrail never imports it: only a
callback registered in this worker runs (``tasks.register_callback``, or the function of a registered
task). As in RQ, ``on_success`` runs before the success is recorded, and one that raises, passes its
timeout or is not registered here fails the job instead (its error is the job's; RQ's Retry still
applies). ``on_failure`` and ``on_stopped`` run once the job is settled; one of those that fails is logged
and recorded on the job hash (``tr_callback_error``) and the job's outcome stands. The claim says which
jobs have callbacks (``ClaimedJob.callbacks``), so only those cost a read: ``on_failure`` and ``on_stopped`` one
round trip (``Job.fetch``); ``on_success``, whose name and timeout the claim brings, one only when the callback
reads a field of the job's hash (``job.meta``, ``job.args``, ...).

A callback gets RQ's arguments: ``on_success(job, connection, result)``, ``on_failure(job, connection,
type, value, traceback)`` (the task's exception; in ``isolation: fork`` a ``TaskFailed`` carrying its
type, message and traceback text, as the exception stays in the work-horse) and ``on_stopped(job,
connection)`` for a revoked running job. A retry of taskrail's own is not a failure: ``on_failure`` runs after
the last; under RQ's ``Retry`` it runs on every failure, as RQ runs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import redis
from rq.defaults import CALLBACK_TIMEOUT
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from config.errors import TaskFailed, TaskNotRegistered, TaskTimeout
from tasks.core import keys
from tasks.core.protocol import decode_exc_string, decode_return_value
from tasks.core.registry import lookup_callback
from workers.current import RunningJob
from workers.runner import Interrupted, Outcome, failed_outcome

__all__ = ["has_callback", "has_success_callback", "run_callbacks", "run_success_callback"]

log = logging.getLogger("taskrail.callbacks")

# outcome kind -> (claim flag, RQ's callback kind), for the callbacks run once the job is settled.
# RQ runs on_failure for a failure it retries too (its own Retry); taskrail's own retries are not failures.
KINDS = {
    "fail": ("f", "failure"),
    "rq_retry": ("f", "failure"),
    "revoked": ("t", "stopped"),
}
SUCCESS = ("s", "success")  # run before the settle: run_success_callback

TimeLimit = Callable[[int], AbstractContextManager[object]]


def has_callback(outcome: Outcome) -> bool:
    """Whether the settled job has an RQ callback to run now (known from the claim, no round trip)."""
    kind = KINDS.get(outcome.kind)
    return kind is not None and kind[0] in outcome.job.callbacks


def has_success_callback(outcome: Outcome) -> bool:
    """Whether a succeeded job has an ``on_success`` to run before its settle."""
    return outcome.kind == "ok" and SUCCESS[0] in outcome.job.callbacks


def run_success_callback(connection: redis.Redis, outcome: Outcome, time_limit: TimeLimit) -> Outcome:
    """Run a succeeded job's ``on_success`` before its settle, as RQ does; the outcome to settle: the same,
    or a failure carrying the callback's error (requeued when the worker's shutdown deadline stopped it)."""
    try:
        error = _run_one(connection, outcome, SUCCESS[1], time_limit)
    except Exception as exc:  # the step itself broke (the job's hash could not be read): the job fails
        error = exc
    if error is None:
        return outcome
    if isinstance(error, Interrupted):
        return Outcome(outcome.job, "requeue", exc_type="interrupted")
    return failed_outcome(outcome.job, outcome.task, error, outcome.duration_s, "its on_success callback failed")


def run_callbacks(connection: redis.Redis, outcomes: Iterable[Outcome], time_limit: TimeLimit) -> None:
    """Run the callback of each settled outcome that has one, each under its timeout; never raises."""
    for outcome in outcomes:
        if not has_callback(outcome):
            continue
        try:
            error = _run_one(connection, outcome, KINDS[outcome.kind][1], time_limit)
        except Exception:  # a broken callback step must not take the worker down
            log.exception("the callback of job %s could not be run", outcome.job.id)
            continue
        if error is not None:
            log.error("job %s: %s", outcome.job.id, error)
            connection.hset(keys.JOB.format(outcome.job.id), "tr_callback_error", str(error)[:2000])


def _run_one(connection: redis.Redis, outcome: Outcome, kind: str, time_limit: TimeLimit) -> BaseException | None:
    """Run the job's ``kind`` callback; the error that stopped it (its message says why), or None."""
    job, name, timeout = _callback_of(connection, outcome, kind)
    func = lookup_callback(name)
    if func is None:
        return TaskNotRegistered(
            f"{kind} callback {name!r} is not registered on this worker, so it was not run; register it with "
            "@tasks.register_callback (or @task) in a module listed in TASKRAIL_IMPORTS"
        )
    if kind == SUCCESS[1]:  # as RQ 3: the callback sees the job finished (in memory; recorded after it)
        job._status = JobStatus.FINISHED
    try:
        with time_limit(timeout):
            func(job, connection, *_arguments(outcome))
    except TaskTimeout:
        return TaskTimeout(f"{kind} callback {name!r} passed its timeout of {timeout}s and was stopped")
    except Interrupted:  # the shutdown deadline passed while it ran; the worker is stopping
        return Interrupted(f"{kind} callback {name!r} was stopped: the worker shut down")
    except Exception as exc:
        exc.add_note(f"raised by the {kind} callback {name!r}")
        return exc
    return None


def _callback_of(connection: redis.Redis, outcome: Outcome, kind: str) -> tuple[Job, str, int]:
    """RQ's ``Job`` to hand the ``kind`` callback, the callback's name and its timeout.

    For ``on_success`` the claim brought the name and timeout: the ``Job`` is built from the claim and loads the
    job's hash only when the callback reads a field that needs it, as ``get_current_job()``'s does
    (workers/current.py), so a callback that only reads ``job.id`` costs no round trip. The other callbacks run
    after the settle and read the settled job (``Job.fetch``, one round trip)."""
    claimed = outcome.job.on_success if kind == SUCCESS[1] else None
    if claimed is None:
        job = Job.fetch(outcome.job.id, connection=connection, serializer=JSONSerializer)
        return job, getattr(job, f"_{kind}_callback_name") or "", getattr(job, f"{kind}_callback_timeout")
    name, timeout = claimed
    lazy = RunningJob(outcome.job.id, outcome.job.queue, connection)
    lazy.id  # noqa: B018 -- built now, so that what _run_one assigns (its status) outlives the hash's load
    return lazy, name, int(timeout) if timeout else CALLBACK_TIMEOUT


def _arguments(outcome: Outcome) -> tuple[Any, ...]:
    if outcome.kind in ("ok", "rq_repeat"):
        return (decode_return_value(outcome.payload),)
    if outcome.kind in ("fail", "rq_retry"):
        error = outcome.error
        if error is None:
            trace = decode_exc_string(outcome.payload)
            error = TaskFailed(outcome.job.id, outcome.exc_type, outcome.exc_message, trace)
        return (type(error), error, error.__traceback__)
    return ()
