"""The producer side: ``@task``, ``AsyncResult``, the error tree. Importing it does no work."""

from config.errors import (
    ConfigError,
    ConnectionFailed,
    EnqueueError,
    Ignore,
    NotSerializable,
    PayloadTooLarge,
    Reject,
    ResultTimeout,
    RetriesExhausted,
    Retry,
    SoftTimeLimitExceeded,
    SupervisorError,
    TaskError,
    TaskFailed,
    TaskNotRegistered,
    TaskrailError,
    TaskRevoked,
    TaskTimeout,
    WorkerLostError,
)
from tasks.core import canvas_builtins  # noqa: F401 (registers celery.map and celery.starmap)
from tasks.core.byname import send_task, signature
from tasks.core.canvas import Signature, chain, chord, group
from tasks.core.canvas_map import chunks, xmap, xstarmap
from tasks.core.client import Client, default_client
from tasks.core.context import Request, TaskContext, current_task
from tasks.core.deadletters import DeadLetter, DeadLetters
from tasks.core.events import Event, follow_events, read_events
from tasks.core.groups import FlowResult, GroupResult, ResultSet
from tasks.core.options import RateLimit, TaskOptions, parse_rate_limit
from tasks.core.queues import is_paused, pause, paused_queues, resume
from tasks.core.registry import all_tasks, lookup, register_callback
from tasks.core.result import STATES, AsyncResult
from tasks.core.task import Task, shared_task, task

# Celery's names for taskrail's errors.
MaxRetriesExceededError = RetriesExhausted
TaskRevokedError = TaskRevoked
TimeLimitExceeded = TaskTimeout

__all__ = [
    "STATES",
    "AsyncResult",
    "Client",
    "ConfigError",
    "ConnectionFailed",
    "DeadLetter",
    "DeadLetters",
    "EnqueueError",
    "Event",
    "FlowResult",
    "GroupResult",
    "Ignore",
    "MaxRetriesExceededError",
    "NotSerializable",
    "PayloadTooLarge",
    "RateLimit",
    "Reject",
    "Request",
    "ResultSet",
    "ResultTimeout",
    "RetriesExhausted",
    "Retry",
    "Signature",
    "SoftTimeLimitExceeded",
    "SupervisorError",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskFailed",
    "TaskNotRegistered",
    "TaskOptions",
    "TaskRevoked",
    "TaskRevokedError",
    "TaskTimeout",
    "TaskrailError",
    "TimeLimitExceeded",
    "WorkerLostError",
    "all_tasks",
    "chain",
    "chord",
    "chunks",
    "current_task",
    "default_client",
    "follow_events",
    "group",
    "is_paused",
    "lookup",
    "parse_rate_limit",
    "pause",
    "paused_queues",
    "read_events",
    "register_callback",
    "resume",
    "send_task",
    "shared_task",
    "signature",
    "task",
    "xmap",
    "xstarmap",
]
