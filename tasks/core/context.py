"""What a bound task (``@task(bind=True)``) receives as ``self``."""

from __future__ import annotations

import time
import traceback as tb_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from rq.job import _current_job

from config.errors import ConfigError, Retry
from tasks.core import validate
from tasks.core.states import check_state

if TYPE_CHECKING:
    from tasks.core.task import Task

__all__ = ["CurrentTask", "ExceptionInfo", "ProgressWriter", "Request", "StateWriter", "TaskContext", "current_task"]

ProgressWriter = Callable[[str, float, str | None], None]
StateWriter = Callable[[str, str, str, bool], bool]  # (job id, state, meta JSON, own job?) -> written


@dataclass(frozen=True)
class Request:
    """Facts about the running job, as Celery's ``self.request``."""

    id: str | None
    task: str
    queue: str
    attempts: int
    retries: int
    args: tuple[Any, ...] = ()
    kwargs: Any = None
    # Celery's other fields; taskrail has no parent/root/group ids outside flows, so they name the job itself.
    hostname: str | None = None
    delivery_info: dict[str, Any] | None = None
    eta: float | None = None
    expires: float | None = None
    called_directly: bool = False
    is_eager: bool = False
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    correlation_id: str | None = None
    headers: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExceptionInfo:
    """Celery's ``einfo`` for the hooks: the exception, its type and its traceback text."""

    exception: BaseException | None
    type: type[BaseException] | None
    traceback: str

    @classmethod
    def of(cls, error: BaseException) -> ExceptionInfo:
        return cls(error, type(error), "".join(tb_module.format_exception(error)))


class TaskContext:
    """``self`` inside a bound task: the request, progress reporting and ``retry()``."""

    def __init__(
        self,
        task: Task[Any, Any],
        request: Request,
        write_progress: ProgressWriter | None = None,
        write_state: StateWriter | None = None,
    ) -> None:
        self.task = task
        self.request = request
        self._write_progress = write_progress
        self._write_state = write_state

    def __getattr__(self, name: str) -> Any:
        """What the task (a ``base=`` class) offers: ``self.db`` in a bound task, as in Celery."""
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.task, name)

    @property
    def name(self) -> str:
        return self.task.name

    @classmethod
    def inline(cls, task: Task[Any, Any]) -> TaskContext:
        """A context for a task called directly, outside any worker."""
        request = Request(None, task.name, task.options.queue, 1, 0, called_directly=True)
        return cls(task, request)

    def update_progress(self, percent: float, note: str | None = None) -> None:
        """Record progress (0 to 100) where ``AsyncResult.progress`` and events can see it."""
        if not 0 <= percent <= 100:
            raise ValueError(f"progress must be between 0 and 100, got {percent!r}")
        if self._write_progress is not None and self.request.id is not None:
            self._write_progress(self.request.id, float(percent), note)

    def update_state(self, task_id: str | None = None, state: str | None = None, meta: Any = None) -> None:
        """Celery's custom states: ``AsyncResult.state`` shows ``state`` and ``.info`` gives ``meta`` while
        the job runs (``task_id``: another job's, default this one's). Called directly, it checks and drops.

        Raises:
            ValueError: ``state`` is not a short name; or ``task_id`` names no job.
            NotSerializable: ``meta`` is not small JSON.
        """
        where = f"{self.task.name}: update_state"
        meta_json = check_state(state, meta, where)
        target = task_id or self.request.id
        if self._write_state is None or target is None or state is None:
            return
        if not self._write_state(target, state, meta_json, target == self.request.id):
            raise ValueError(f"{where}: no job {target!r}; pass the id of an existing job or leave task_id out")

    def retry(
        self,
        countdown: float | None = None,
        exc: BaseException | None = None,
        *,
        eta: datetime | None = None,
        max_retries: int | None = None,
        throw: bool = True,
    ) -> NoReturn:
        """Ask for another attempt, Celery style: after ``countdown`` seconds or at ``eta``, else after the
        task's ``default_retry_delay`` or backoff. ``max_retries`` overrides the task's for this decision.
        Past the last retry the job fails with ``exc`` (so ``get()`` raises it), or with
        ``MaxRetriesExceededError`` when no ``exc`` was given.

        Raises:
            Retry: always, for the worker to schedule the attempt.
            ConfigError: a bad ``countdown``/``eta``, both given, or ``throw=False`` (not offered).
        """
        where = f"{self.task.name}: self.retry"
        if not throw:
            raise ConfigError(f"{where}: throw=False is not offered; raise the retry (the default)")
        if eta is not None:
            if countdown is not None:
                raise ConfigError(f"{where}: pass countdown or eta, not both")
            countdown = max(0.0, (validate.eta(eta, where) or 0.0) - time.time())
        if countdown is not None:
            countdown = validate.countdown(countdown, where)
        if max_retries is not None and (isinstance(max_retries, bool) or not isinstance(max_retries, int)):
            raise ConfigError(f"{where}: max_retries must be an integer, got {max_retries!r}")
        raise Retry(countdown=countdown, exc=exc, max_retries=False if max_retries is None else max_retries)


class CurrentTask:
    """Celery's ``current_task``: the task running in this thread, false outside one. ``request`` has
    the job's id, task name, queue, args and kwargs (read from the job on first use)."""

    def __bool__(self) -> bool:
        return _current_job.get(None) is not None

    def __repr__(self) -> str:
        job = _current_job.get(None)
        return f"<current_task {job.id if job is not None else None}>"

    @property
    def request(self) -> Request | None:
        job = _current_job.get(None)
        if job is None:
            return None
        return Request(job.id, job.func_name or "", job.origin, 0, 0, tuple(job.args), job.kwargs)

    @property
    def name(self) -> str | None:
        request = self.request
        return request.task if request is not None else None


current_task = CurrentTask()
