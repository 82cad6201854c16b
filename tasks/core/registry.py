"""The task registry: the one piece of mutable module-level state taskrail allows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config.errors import ConfigError

if TYPE_CHECKING:
    from tasks.core.task import Task

__all__ = ["all_tasks", "lookup", "register"]

_TASKS: dict[str, Task[Any, Any]] = {}


def register(task: Task[Any, Any]) -> None:
    """Add a task under its name; a different function under a taken name is an error."""
    existing = _TASKS.get(task.name)
    if existing is not None and _origin(existing) != _origin(task):
        raise ConfigError(
            f"task name {task.name!r} is taken by {_origin(existing)}; give @task(name=...) a unique name"
        )
    _TASKS[task.name] = task


def lookup(name: str) -> Task[Any, Any] | None:
    """The registered task called ``name``, or None. Never imports anything."""
    return _TASKS.get(name)


def all_tasks() -> dict[str, Task[Any, Any]]:
    """A copy of the registry, by name."""
    return dict(_TASKS)


def _origin(task: Task[Any, Any]) -> str:
    return f"{task.func.__module__}.{task.func.__qualname__}"
