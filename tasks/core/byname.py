"""Calling a task by name without importing its code: Celery's ``send_task`` and ``signature("name")``.

A producer that does not import the workers' modules gets a stand-in ``Task`` for the name: it enqueues
like the real one (arguments are checked by the worker, not here) and cannot be called inline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.errors import ConfigError
from tasks.core import canvas
from tasks.core.canvas import Signature
from tasks.core.options import TaskOptions
from tasks.core.registry import lookup
from tasks.core.result import AsyncResult
from tasks.core.task import Task

__all__ = ["by_name", "send_task", "signature"]


def by_name(name: str, queue: str | None = None) -> Task[Any, Any]:
    """The registered task ``name``, or a stand-in that enqueues under that name (on ``queue``, default
    ``default``). Never imports anything."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a task name must be a non-empty string like 'proj.tasks.add', got {name!r}")
    found = lookup(name)
    if found is not None:
        return found

    def remote(*args: Any, **kwargs: Any) -> Any:
        raise ConfigError(f"task {name!r} is not registered here, so it cannot run inline; use .delay() or "
                          "import the module that defines it")  # fmt: skip

    options = TaskOptions(name=name, queue=queue or "default")
    options.validate(f"task {name!r}")
    return Task(remote, options)


def send_task(name: str, args: Iterable[Any] | None = None, kwargs: dict[str, Any] | None = None,
              **options: Any) -> AsyncResult:  # fmt: skip
    """Celery's ``app.send_task``: enqueue a call of the task registered as ``name`` on the workers.

    Raises:
        ConfigError: a bad option; EnqueueError: arguments that are not JSON or too large.
    """
    return by_name(name, options.get("queue")).apply_async(tuple(args or ()), kwargs or {}, **options)


def signature(task: Task[Any, Any] | str, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None,
              **options: Any) -> Signature:  # fmt: skip
    """A signature from a task or a task's name (Celery's ``signature("proj.tasks.add", args=(2, 2))``);
    a name not registered here makes a stand-in that enqueues under it."""
    found = by_name(task, options.get("queue")) if isinstance(task, str) else task
    return canvas.signature(found, args, kwargs, **options)
