"""Eager mode, Celery's ``task_always_eager``: ``TASKRAIL_ALWAYS_EAGER=1`` (or ``always_eager: true`` in the
settings file) makes ``.delay()`` / ``.apply_async()`` run the task inline and return an ``EagerResult``
with ``AsyncResult``'s API, without touching any server. ``Task.apply()`` does the same on demand.

Arguments and the return value go through JSON as on a worker; retries run at once (no waiting), up to the
task's ``max_retries``; the ``base=`` hooks run; per-call options other than ``task_id`` are ignored.
"""

from __future__ import annotations

import functools
import json
import traceback
from typing import TYPE_CHECKING, Any

from config.errors import Ignore, RetriesExhausted, Retry, TaskRevoked
from config.settings import load_settings
from tasks import signals
from tasks.core.context import ExceptionInfo, Request, TaskContext
from tasks.core.protocol import new_job_id
from tasks.core.result import AsyncResult

if TYPE_CHECKING:
    from tasks.core.task import Task

__all__ = ["EagerResult", "always_eager", "run_eagerly"]


@functools.cache
def always_eager() -> bool:
    """Whether eager mode is on (read once per process; ``always_eager.cache_clear()`` to read again)."""
    return load_settings().always_eager


class EagerResult(AsyncResult):
    """The outcome of a task run inline, with ``AsyncResult``'s API (and no server behind it)."""

    def __init__(self, job_id: str, state: str, value: Any, error: BaseException | None, retries: int) -> None:
        super().__init__(job_id)
        self._state = state
        self._value = value
        self._error = error
        self._retries = retries

    def __repr__(self) -> str:
        return f"<EagerResult {self.id} {self._state}>"

    @property
    def state(self) -> str:
        return self._state

    @property
    def status(self) -> str:
        return self._state

    @property
    def attempts(self) -> int:
        return self._retries + 1

    @property
    def progress(self) -> dict[str, Any] | None:
        return None

    @property
    def result(self) -> Any:
        return self._error if self._error is not None else self._value

    info = result

    @property
    def traceback(self) -> str | None:
        error = self._error
        return "".join(traceback.format_exception(error)) if error is not None else None

    def ready(self) -> bool:
        return True

    def successful(self) -> bool:
        return self.state == "SUCCESS"

    def failed(self) -> bool:
        return self.state == "FAILURE"

    def get(self, timeout: float | None = None, propagate: bool = True, disable_sync_subtasks: bool = True) -> Any:
        """The return value; the task's own exception is raised (with ``propagate``), as Celery's eager get."""
        if self._error is not None and propagate:
            raise self._error
        return self.result

    def revoke(self, terminate: bool = False, signal: str | None = None, **_celery: Any) -> str:
        return f"already {self.state.lower()}"

    def forget(self) -> None:
        """Nothing is stored, so nothing to forget."""


def run_eagerly(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], job_id: str | None) -> EagerResult:
    """Run ``task`` here as a worker would (JSON arguments, retries, hooks, task signals) and return its result.

    As Celery's eager ``apply()``: ``task_prerun`` and ``task_postrun`` around each attempt, ``task_retry``,
    ``task_success``, ``task_failure`` and ``task_revoked`` as the attempt ends; no publish signals (nothing
    is published).
    """
    task.check_arguments(args, kwargs)
    call: list[Any] = json.loads(json.dumps([list(args), kwargs], allow_nan=False))
    args_, kwargs = call
    job_id = job_id or new_job_id()
    retries = 0
    while True:
        signals.send(signals.task_prerun, task, task_id=job_id, task=task, args=args_, kwargs=kwargs)
        try:
            value = json.loads(json.dumps(_call(task, job_id, args_, kwargs, retries), allow_nan=False))
        except (Ignore, TaskRevoked) as stop:
            signals.send(signals.task_revoked, task, request=None, terminated=False, signum=None, expired=False)
            return _ended(EagerResult(job_id, "REVOKED", None, stop, retries), task, args_, kwargs)
        except Exception as exc:
            if _retries_left(task, exc, retries):
                signals.send(signals.task_retry, task, request=None, reason=exc, einfo=ExceptionInfo.of(exc))
                _postrun(task, job_id, args_, kwargs, exc, "RETRY")
                retries += 1
                continue
            error = _shown(task, exc, retries)
            einfo = ExceptionInfo.of(error)
            if task.hooked:
                task.on_failure(error, job_id, tuple(args_), kwargs, einfo)
            signals.send(signals.task_failure, task, task_id=job_id, exception=error, args=args_, kwargs=kwargs,
                         traceback=einfo.traceback, einfo=einfo)  # fmt: skip
            return _ended(EagerResult(job_id, "FAILURE", None, error, retries), task, args_, kwargs)
        if task.hooked:
            task.on_success(value, job_id, tuple(args_), kwargs)
        signals.send(signals.task_success, task, result=value)
        return _ended(EagerResult(job_id, "SUCCESS", value, None, retries), task, args_, kwargs)


def _ended(result: EagerResult, task: Task[Any, Any], args: list[Any], kwargs: dict[str, Any]) -> EagerResult:
    _postrun(task, result.id, args, kwargs, result.result, result.state)
    return result


def _postrun(task: Task[Any, Any], job_id: str, args: list[Any], kwargs: dict[str, Any], retval: Any,
             state: str) -> None:  # fmt: skip
    signals.send(signals.task_postrun, task, task_id=job_id, task=task, args=args, kwargs=kwargs, retval=retval,
                 state=state)  # fmt: skip


def _call(task: Task[Any, Any], job_id: str, args: list[Any], kwargs: dict[str, Any], retries: int) -> Any:
    if task.hooked:
        task.before_start(job_id, tuple(args), kwargs)
    if task.options.bind:
        request = Request(job_id, task.name, task.options.queue, retries + 1, retries, tuple(args), kwargs,
                          is_eager=True, root_id=job_id, correlation_id=job_id)  # fmt: skip
        return task.func(TaskContext(task, request), *args, **kwargs)
    return task.func(*args, **kwargs)


def _retries_left(task: Task[Any, Any], exc: Exception, retries: int) -> bool:
    opts = task.options
    if isinstance(exc, Retry):
        limit = opts.max_retries if exc.max_retries is False else exc.max_retries
    elif isinstance(exc, opts.autoretry_for) and not isinstance(exc, opts.dont_autoretry_for):
        limit = opts.max_retries
    else:
        return False
    return limit is None or retries < limit


def _shown(task: Task[Any, Any], exc: Exception, retries: int) -> BaseException:
    """The exception a failed eager run ends with: a retry's ``exc``, else MaxRetriesExceededError."""
    if isinstance(exc, Retry):
        return exc.exc or RetriesExhausted(f"{task.name} failed after {retries} retries")
    return exc
