"""RQ's worker operations under workers.Worker: its pub/sub commands and its exception handlers.

Commands (``rq.command.send_shutdown_command``, ``send_stop_job_command``, ``send_kill_horse_command``)
arrive on RQ's channel for the worker (``rq:pubsub:<name>``), which RQ's own ``subscribe()`` listens
to in a thread; ``workers.Worker.handle_payload`` hands each one to ``handle_command``:

- ``shutdown``: a graceful stop, as SIGTERM (running jobs finish until the shutdown deadline).
- ``stop-job``: the job, if this worker runs it, stops with ``JobStopped``: status ``stopped``, in the
  failed registry with RQ's failure text, never retried (RQ's ``_handle_stopped_job``).
- ``kill-horse``: every running job stops with ``HorseKilled`` (with ``isolation: fork`` its work-horse
  is killed) and fails, as RQ fails a job whose work-horse died.
- ``stop-execution`` (``send_stop_execution_command``): as stop-job, for the execution this worker runs.
  Its execution records (workers/executions.py) carry the worker's name as their id, so a command whose
  ``execution_id`` is not this worker's name, or whose job this worker does not run, is logged and ignored.
- ``taskrail-inspect`` and ``taskrail-control`` (``taskrail inspect``, ``taskrail control``) are
  answered from the worker's memory by workers/control.py; any command with a ``reply_to`` is answered.

Exception handlers (``exception_handlers=``, ``rq worker --exception-handler``) run after the settle
of a failed or retried job, with an rq ``Job`` and ``(exc_type, exc_value, traceback)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.job_lifecycle import call_exception_handlers

from config.errors import ConfigError
from tasks.core import keys
from workers.control import InspectedWorker, inspect, reply, set_rate_limit
from workers.runner import Outcome

__all__ = ["CommandedWorker", "handle_command", "run_exception_handlers"]

log = logging.getLogger("taskrail.commands")


class CommandedWorker(InspectedWorker, Protocol):
    """What the commands need of their worker (workers/worker.py's ``Worker``)."""

    def request_stop(self, signum: int | None = None, frame: Any = None) -> None: ...
    def record_stop(self) -> None: ...
    def stop_job(self, job_id: str) -> bool: ...
    def kill_horse(self, sig: Any = None) -> None: ...


def handle_command(worker: CommandedWorker, payload: dict[str, Any]) -> None:
    """Act on one command sent with rq.command; an unknown or malformed one is logged and ignored.
    With a ``reply_to``, the worker answers it (workers/control.py)."""
    command, reply_to = payload.get("command"), payload.get("reply_to")
    if command in ("taskrail-inspect", "taskrail-control"):
        _answer(worker, payload)
        return
    if reply_to:  # before acting: a shutdown's answer must leave before the worker does
        reply(worker.connection, reply_to, worker.name, {"command": command})
    if command == "shutdown":
        log.info("worker %s: shutdown command received", worker.name)
        worker.request_stop()
        worker.record_stop()  # at once: a claim the server makes from now on takes nothing
    elif command in ("stop-job", "stop-execution"):
        _stop(worker, command, payload.get("job_id"), payload.get("execution_id", worker.name))
    elif command == "kill-horse":
        log.info("worker %s: kill-horse command received", worker.name)
        worker.kill_horse()
    else:
        log.warning("worker %s: unknown command %r ignored", worker.name, command)


def _stop(worker: CommandedWorker, command: str, job_id: Any, execution_id: Any) -> None:
    """Stop-job, or stop-execution of this worker's execution (its id is the worker's name)."""
    if execution_id != worker.name:
        log.warning("worker %s: not running execution %r, %s command ignored", worker.name, execution_id, command)
    elif not (isinstance(job_id, str) and worker.stop_job(job_id)):
        log.warning("worker %s: not running job %r, %s command ignored", worker.name, job_id, command)


def _answer(worker: CommandedWorker, payload: dict[str, Any]) -> None:
    """Answer an inspect or control request; a bad one gets an error answer, never an exception."""
    try:
        if payload["command"] == "taskrail-inspect":
            answer = inspect(worker, str(payload.get("what")))
        elif payload.get("action") == "rate_limit":
            answer = set_rate_limit(worker, payload.get("task"), payload.get("rate"))
        else:
            raise ConfigError(f"control {payload.get('action')!r} is not answered by workers; use rate_limit")
    except ConfigError as exc:
        reply(worker.connection, payload.get("reply_to"), worker.name, error=str(exc))
    except Exception as exc:  # an answer must never take the pub/sub thread down
        log.exception("worker %s: answering %r failed", worker.name, payload)
        reply(worker.connection, payload.get("reply_to"), worker.name, error=f"{type(exc).__name__}: {exc}")
    else:
        reply(worker.connection, payload.get("reply_to"), worker.name, answer)


Handler = Callable[..., Any]


def run_exception_handlers(
    conn: redis.Redis, handlers: Sequence[Handler], outcomes: list[Outcome], serializer: Any, drop_failed: bool
) -> None:
    """Call RQ exception handlers for the failed and retried ``outcomes``, after their settle.

    With ``drop_failed`` (RQ's ``disable_default_exception_handler``) failed jobs also leave the
    failed registry, as RQ then never puts them there.
    """
    failed = [o for o in outcomes if o.kind in ("fail", "retry", "rq_retry")]
    if not failed:
        return
    try:
        _run_handlers(conn, handlers, failed, serializer, drop_failed)
    except redis.RedisError as exc:  # the settle is done; a lost connection must not repeat it
        log.warning("exception handlers of %d failed jobs not run: %s", len(failed), exc)


def _run_handlers(
    conn: redis.Redis, handlers: Sequence[Handler], failed: list[Outcome], serializer: Any, drop_failed: bool
) -> None:
    if drop_failed:
        with conn.pipeline(transaction=False) as pipe:
            for outcome in failed:
                if outcome.kind == "fail":
                    pipe.zrem(keys.FAILED.format(outcome.job.queue), outcome.job.id)
            pipe.execute()
    for outcome in failed:
        try:
            job = Job.fetch(outcome.job.id, connection=conn, serializer=serializer)
        except NoSuchJobError:
            continue
        error = outcome.error or Exception(f"{outcome.exc_type}: {outcome.exc_message}")  # from a work-horse
        try:
            call_exception_handlers(handlers, job, type(error), error, error.__traceback__)
        except Exception:  # a failing handler must not take the worker down
            log.exception("an exception handler failed for job %s", outcome.job.id)
