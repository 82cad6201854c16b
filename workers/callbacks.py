"""RQ job callbacks (``on_success``, ``on_failure``, ``on_stopped``), run by the worker once the job is settled.

RQ keeps a callback's dotted name and timeout on the job hash (``success_callback_name``,
``success_callback_timeout``, ...) and its own worker imports that name. taskrail never imports it: only a
callback registered in this worker runs (``tasks.register_callback``, or the function of a registered
task). One that is not registered, raises or passes its timeout is logged and recorded on the job hash
(``tr_callback_error``); the job's own outcome stands. The claim says which jobs have callbacks
(``ClaimedJob.callbacks``), so only those cost a read (``Job.fetch``, one round trip).

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
from rq.job import Job
from rq.serializers import JSONSerializer

from config.errors import TaskFailed, TaskTimeout
from tasks.core import keys
from tasks.core.protocol import decode_exc_string, decode_return_value
from tasks.core.registry import lookup_callback
from workers.runner import Interrupted, Outcome

__all__ = ["has_callback", "run_callbacks"]

log = logging.getLogger("taskrail.callbacks")

# outcome kind -> (claim flag, RQ's callback kind)
# RQ runs on_failure for a failure it retries too (its own Retry); taskrail's own retries are not failures.
KINDS = {
    "ok": ("s", "success"),
    "rq_repeat": ("s", "success"),
    "fail": ("f", "failure"),
    "rq_retry": ("f", "failure"),
    "revoked": ("t", "stopped"),
}

TimeLimit = Callable[[int], AbstractContextManager[object]]


def has_callback(outcome: Outcome) -> bool:
    """Whether the job has an RQ callback for the way it ended (known from the claim, no round trip)."""
    kind = KINDS.get(outcome.kind)
    return kind is not None and kind[0] in outcome.job.callbacks


def run_callbacks(connection: redis.Redis, outcomes: Iterable[Outcome], time_limit: TimeLimit) -> None:
    """Run the callback of each settled outcome that has one, each under its timeout; never raises."""
    for outcome in outcomes:
        if not has_callback(outcome):
            continue
        try:
            _run_one(connection, outcome, time_limit)
        except Exception:  # a broken callback step must not take the worker down
            log.exception("the callback of job %s could not be run", outcome.job.id)


def _run_one(connection: redis.Redis, outcome: Outcome, time_limit: TimeLimit) -> None:
    kind = KINDS[outcome.kind][1]
    job = Job.fetch(outcome.job.id, connection=connection, serializer=JSONSerializer)
    name: str = getattr(job, f"_{kind}_callback_name") or ""
    func = lookup_callback(name)
    if func is None:
        _record(connection, job, f"{kind} callback {name!r} is not registered on this worker, so it was not run; "
                "register it with @tasks.register_callback (or @task) in a module listed in TASKRAIL_IMPORTS")  # fmt: skip
        return
    timeout: int = getattr(job, f"{kind}_callback_timeout")
    try:
        with time_limit(timeout):
            func(job, connection, *_arguments(outcome))
    except TaskTimeout:
        _record(connection, job, f"{kind} callback {name!r} passed its timeout of {timeout}s and was stopped")
    except Interrupted:  # the shutdown deadline passed while it ran; the worker is stopping
        _record(connection, job, f"{kind} callback {name!r} was stopped: the worker shut down")
    except Exception as exc:
        _record(connection, job, f"{kind} callback {name!r} raised {type(exc).__name__}: {exc}")


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


def _record(connection: redis.Redis, job: Job, message: str) -> None:
    log.error("job %s: %s", job.id, message)
    connection.hset(keys.JOB.format(job.id), "tr_callback_error", message[:2000])
