"""The one error tree of taskrail, in config/ so that every layer can import it.

TaskrailError
├── ConfigError                 bad settings, profile or environment
├── ConnectionFailed            the Redis server cannot be reached
├── EnqueueError                a job was refused before anything was written
│   ├── NotSerializable
│   └── PayloadTooLarge
├── TaskError                   a task could not run or finished badly
│   ├── TaskNotRegistered
│   ├── InvalidJob              a job hash that cannot run as it stands (a poison job)
│   ├── TaskTimeout             also RQ's ``rq.timeouts.JobTimeoutException`` (Celery: TimeLimitExceeded)
│   ├── SoftTimeLimitExceeded   raised inside a task at its ``soft_time_limit``
│   ├── TaskRevoked             (Celery: TaskRevokedError)
│   ├── TaskFailed              carries the remote exception type and traceback
│   ├── RetriesExhausted        (Celery: MaxRetriesExceededError)
│   ├── Retry                   raised by ``self.retry()`` to ask for another attempt
│   ├── Ignore                  raised by a task: end without recording a result or state (Celery's)
│   ├── WorkerLostError         a job's work-horse died under a live worker (Celery's name)
│   └── Reject                  raised by a task: fail it now, never retried (Celery's; requeue=True requeues)
├── ResultTimeout               also a builtin ``TimeoutError``
├── SupervisorError             the supervisor gave up
└── BenchError                  a benchmark run failed

``tasks`` re-exports the public names (``from tasks import TaskFailed``); inside taskrail, import from here.
"""

from __future__ import annotations

from rq.timeouts import JobTimeoutException

__all__ = [
    "BenchError",
    "ConfigError",
    "ConnectionFailed",
    "EnqueueError",
    "Ignore",
    "InvalidJob",
    "NotSerializable",
    "PayloadTooLarge",
    "Reject",
    "ResultTimeout",
    "RetriesExhausted",
    "Retry",
    "SoftTimeLimitExceeded",
    "SupervisorError",
    "TaskError",
    "TaskFailed",
    "TaskNotRegistered",
    "TaskRevoked",
    "TaskTimeout",
    "TaskrailError",
    "WorkerLostError",
]


class TaskrailError(Exception):
    """Raised when anything in taskrail fails; the root of the tree."""


class ConfigError(TaskrailError):
    """Raised when settings, a profile or the environment hold a bad value."""


class ConnectionFailed(TaskrailError):
    """Raised when the Redis server at the configured URL cannot be reached."""


class EnqueueError(TaskrailError):
    """Raised when a job is refused at enqueue time; nothing was written."""


class NotSerializable(EnqueueError):
    """Raised when task arguments cannot be encoded as JSON."""


class PayloadTooLarge(EnqueueError):
    """Raised when a job's encoded arguments pass the configured size limit."""


class TaskError(TaskrailError):
    """Raised when a task could not run or finished badly."""


class TaskNotRegistered(TaskError):
    """Raised when a job names a callable that is not a registered task."""


class InvalidJob(TaskError):
    """Raised (as a job's failure) when a job's hash cannot run as it stands: no data, data too large or not
    taskrail's format, or a ``tr_*`` field that is not what taskrail writes."""


class TaskTimeout(TaskError, JobTimeoutException):
    """Raised when a task runs past its hard ``time_limit``; ``except JobTimeoutException`` catches it too."""


class SoftTimeLimitExceeded(TaskError):
    """Raised inside a task when it runs past its ``soft_time_limit``; it may catch it to clean up."""


class Ignore(TaskError):
    """Raised by a task (Celery's ``Ignore``) to end its job without a result: nothing is retried."""


class Reject(TaskError):
    """Raised by a task (Celery's ``Reject``): the job fails at once, never retried; with ``requeue=True``
    it goes back to its queue instead."""

    def __init__(self, reason: object = None, requeue: bool = False) -> None:
        super().__init__(reason if reason is not None else "rejected")
        self.reason = reason
        self.requeue = requeue


class WorkerLostError(TaskError):
    """Raised (as a job's failure) when the job's work-horse process died unexpectedly under a live worker
    (``isolation: fork``: OOM killer, SIGKILL, a crash in C code); Celery's name for it."""


class TaskRevoked(TaskError):
    """Raised when a task was revoked while it ran or waited."""


class RetriesExhausted(TaskError):
    """Raised when a task failed after its last allowed retry."""


class Retry(TaskError):
    """Raised by ``self.retry()`` inside a bound task to ask for another attempt."""

    def __init__(
        self,
        countdown: float | None = None,
        exc: BaseException | None = None,
        max_retries: int | bool | None = False,
    ) -> None:
        super().__init__(f"retry requested{f' after {countdown}s' if countdown is not None else ''}")
        self.countdown = countdown
        self.exc = exc
        self.max_retries = max_retries  # False: the task's own; None: retry forever; else this many


class TaskFailed(TaskError):
    """Raised by ``AsyncResult.get()`` when the task failed; carries the remote error."""

    def __init__(self, job_id: str, exc_type: str, message: str, traceback: str) -> None:
        super().__init__(f"task {job_id} failed: {exc_type}: {message}")
        self.job_id = job_id
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback


class ResultTimeout(TaskrailError, TimeoutError):
    """Raised when ``AsyncResult.get(timeout=...)`` waited longer than its timeout."""


class SupervisorError(TaskrailError):
    """Raised when the supervisor gives up (restart intensity passed, bad plan)."""


class BenchError(TaskrailError):
    """Raised when a benchmark run cannot finish: a worker died, jobs failed or stopped moving."""
