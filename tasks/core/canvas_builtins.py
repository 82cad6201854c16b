"""The built-in tasks behind ``xmap``, ``xstarmap`` and ``chunks`` (tasks/core/canvas_map.py), under Celery's
names ``celery.map`` and ``celery.starmap``. Importing ``tasks`` registers them, so every worker has them.

They call the mapped task inline, item after item, in one job: the task's retries, time limit and rate
limit apply to the whole job, not per item, as in Celery.
"""

from __future__ import annotations

from typing import Any

from config.errors import TaskNotRegistered
from tasks.core.registry import lookup
from tasks.core.task import Task, task

__all__ = ["run_map", "run_starmap"]


def _task(name: str) -> Task[Any, Any]:
    found = lookup(name)
    if found is None:
        raise TaskNotRegistered(f"task {name!r} is not registered on this worker; add its module to TASKRAIL_IMPORTS")
    return found


@task(name="celery.map", queue="default")
def run_map(task_name: str, items: list[Any]) -> list[Any]:
    """The job behind ``xmap``: ``[task(item) for item in items]``."""
    found = _task(task_name)
    return [found(item) for item in items]


@task(name="celery.starmap", queue="default")
def run_starmap(task_name: str, items: list[list[Any]]) -> list[Any]:
    """The job behind ``xstarmap`` and each chunk: ``[task(*args) for args in items]``."""
    found = _task(task_name)
    return [found(*args) for args in items]
