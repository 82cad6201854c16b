"""What a bound task (``@task(bind=True)``) receives as ``self``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from config.errors import Retry
from tasks.core import validate
from tasks.core.states import check_state

if TYPE_CHECKING:
    from tasks.core.task import Task

__all__ = ["ProgressWriter", "Request", "StateWriter", "TaskContext"]

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

    @classmethod
    def inline(cls, task: Task[Any, Any]) -> TaskContext:
        """A context for a task called directly, outside any worker."""
        return cls(task, Request(id=None, task=task.name, queue=task.options.queue, attempts=1, retries=0))

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

    def retry(self, countdown: float | None = None, exc: BaseException | None = None) -> NoReturn:
        """Ask for another attempt (after ``countdown`` seconds, else the task's backoff).

        Raises:
            Retry: always, for the worker to schedule the attempt.
            ConfigError: ``countdown`` is not a finite number of seconds from 0 to 10 years.
        """
        if countdown is not None:
            countdown = validate.countdown(countdown, f"{self.task.name}: self.retry")
        raise Retry(countdown=countdown, exc=exc)
