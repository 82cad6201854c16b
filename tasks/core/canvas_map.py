"""Celery's ``map``, ``starmap`` and ``chunks``: one job that calls a task for every item, in order.

``add.starmap([(2, 2), (4, 4)])`` is one job that returns ``[add(2, 2), add(4, 4)]``; ``add.map([1, 2])``
one that returns ``[add(1), add(2)]``; ``add.chunks(items, 10)`` a group of starmap jobs of 10 items each,
whose result is one list per chunk. The jobs run the built-in tasks ``celery.map`` and ``celery.starmap``
(tasks/core/canvas_builtins.py, registered on every worker) on the mapped task's queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from config.errors import ConfigError
from tasks.core.canvas import group
from tasks.core.canvas_signature import Signature
from tasks.core.registry import lookup

if TYPE_CHECKING:
    from tasks.core.task import Task

__all__ = ["chunks", "task_chunks", "xmap", "xstarmap"]


def _builtin(name: str) -> Task[Any, Any]:
    found = lookup(name)
    if found is None:  # importing ``tasks`` registers them (tasks/core/canvas_builtins.py)
        raise ConfigError(f"the built-in task {name!r} is not registered: import tasks (or tasks.core.canvas_builtins)")
    return found


def _plain(item: Any) -> Any:
    """An item as JSON keeps it: a tuple or range becomes a list."""
    return list(item) if isinstance(item, tuple | range) else item


def xmap(mapped: Task[Any, Any], items: Iterable[Any]) -> Signature:
    """One job returning ``[mapped(item) for item in items]``, on ``mapped``'s queue (Celery's ``task.map``)."""
    values = list(items)
    for item in values:
        try:
            mapped.check_arguments((item,), {})
        except ConfigError as exc:
            hint = " (a tuple of arguments per call? use starmap, or enqueue_many for one job per call)"
            raise ConfigError(f"{mapped.name}.map: {exc}{hint if isinstance(item, tuple) else ''}") from exc
    return _builtin("celery.map").si(mapped.name, [_plain(i) for i in values]).set(queue=mapped.options.queue)


def xstarmap(mapped: Task[Any, Any], items: Iterable[Iterable[Any]]) -> Signature:
    """One job returning ``[mapped(*args) for args in items]`` (Celery's ``task.starmap``)."""
    rows = [list(args) for args in items]
    for args in rows:
        mapped.check_arguments(tuple(args), {})
    return _builtin("celery.starmap").si(mapped.name, rows).set(queue=mapped.options.queue)


class chunks(group):
    """Celery's ``task.chunks(items, n)``: a group of ``xstarmap`` jobs of ``n`` items each; its result is
    one list per chunk. ``.group()`` gives the plain group (for ``skew``)."""

    def __init__(self, mapped: Task[Any, Any], items: Iterable[Iterable[Any]], n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{mapped.name}.chunks: the chunk size must be a whole number of items >= 1, got {n!r}")
        rows = [list(args) for args in items]
        super().__init__([xstarmap(mapped, rows[start : start + n]) for start in range(0, len(rows), n)])
        self.mapped, self.size = mapped, n

    def __repr__(self) -> str:
        return f"{self.mapped.name}.chunks({len(self.members)} chunks of {self.size})"

    def group(self) -> group:
        return group(self.members, group_id=self.group_id)


def task_chunks(mapped: Task[Any, Any], items: Iterable[Iterable[Any]], n: int) -> chunks:
    """``Task.chunks``: Celery's ``task.chunks(items, n)``, a group of starmap jobs of ``n`` items each."""
    return chunks(mapped, items, n)
