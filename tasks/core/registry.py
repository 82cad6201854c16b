"""The task registry: the one piece of mutable module-level state taskrail allows.

It also holds the functions allowed as RQ job callbacks (``on_success``, ``on_failure``, ``on_stopped``):
a worker runs a callback only if its name is registered here, never by importing a dotted name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from config.errors import ConfigError

if TYPE_CHECKING:
    from tasks.core.task import Task

__all__ = ["all_tasks", "import_task_modules", "lookup", "lookup_callback", "register", "register_callback"]

F = TypeVar("F", bound=Callable[..., Any])

_TASKS: dict[str, Task[Any, Any]] = {}
_CALLBACKS: dict[str, Callable[..., Any]] = {}


def register(task: Task[Any, Any]) -> None:
    """Add a task under its name; a different function under a taken name is an error."""
    existing = _TASKS.get(task.name)
    if existing is not None and _origin(existing) != _origin(task):
        raise ConfigError(
            f"task name {task.name!r} is taken by {_origin(existing)}; give @task(name=...) a unique name"
        )
    _TASKS[task.name] = task


def import_task_modules(modules: Iterable[str]) -> None:
    """Import the task modules named by ``TASKRAIL_IMPORTS`` (``settings.imports``), registering their tasks.

    Raises:
        ConfigError: a module cannot be imported, naming it and the fix.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"cannot import task module {module!r} ({exc}); fix TASKRAIL_IMPORTS") from exc


def lookup(name: str) -> Task[Any, Any] | None:
    """The registered task called ``name``, or None. Never imports anything."""
    return _TASKS.get(name)


def register_callback(func: F) -> F:
    """Allow ``func`` as an RQ job callback, under the name RQ stores for it (``module.qualname``); a decorator."""
    _CALLBACKS[f"{func.__module__}.{func.__qualname__}"] = func
    return func


def lookup_callback(name: str) -> Callable[..., Any] | None:
    """The callback RQ stored as ``name``: a registered callback or a registered task's function, or None.
    Never imports anything."""
    found = _CALLBACKS.get(name)
    if found is not None:
        return found
    task = _TASKS.get(name)
    return task.func if task is not None else None


def all_tasks() -> dict[str, Task[Any, Any]]:
    """A copy of the registry, by name."""
    return dict(_TASKS)


def _origin(task: Task[Any, Any]) -> str:
    return f"{task.func.__module__}.{task.func.__qualname__}"
