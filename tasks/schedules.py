"""Periodic tasks in code, with Celery's names: ``crontab``, ``schedule``, ``add_periodic_task``, ``beat_schedule``.

As in Celery (``from celery.schedules import crontab`` becomes ``from tasks.schedules import crontab``)::

    add_periodic_task(crontab(hour=7, minute=30, day_of_week="mon"), send_report.s("weekly"), expires=3600)
    add_periodic_task(30.0, ping.s(), name="ping every 30s")
    add_beat_schedule({"nightly": {"task": "myapp.tasks.cleanup", "schedule": crontab(minute=0, hour=2)}})

Call them at the import of a module listed in ``TASKRAIL_IMPORTS``: the workers' elected leader merges
these schedules with ``config/periodic.yaml`` and the ``beat_schedule`` setting, validates them, and
fires each occurrence once (workers/periodic.py). Each schedule is kept here in the YAML file's shape
(``task``, ``cron`` or ``every_s``, ``args``, ``kwargs``, ``queue``, ``expires_s``, ``timezone``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from croniter import croniter

from config.errors import ConfigError

__all__ = ["add_beat_schedule", "add_periodic_task", "beat_entry", "code_schedules", "crontab", "schedule"]

# Schedules registered in code, by name: with the task registry, the only process-wide state.
_SCHEDULES: dict[str, dict[str, Any]] = {}
_OPTIONS = ("queue", "expires")


@dataclass(frozen=True)
class crontab:  # lower case: Celery's name
    """Celery's ``crontab(minute, hour, day_of_week, day_of_month, month_of_year)``; each field is cron text."""

    minute: str | int = "*"
    hour: str | int = "*"
    day_of_week: str | int = "*"
    day_of_month: str | int = "*"
    month_of_year: str | int = "*"

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ConfigError(
                f"{self!r} is not a valid schedule; each field takes cron syntax like '*', '*/15', '1-5' or 'mon-fri'"
            )

    @property
    def cron(self) -> str:
        """The same schedule as a 5-field cron line (minute hour day month weekday)."""
        fields = (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        return " ".join(str(f).replace(" ", "") for f in fields)


@dataclass(frozen=True)
class schedule:  # lower case: Celery's name
    """Celery's ``schedule(run_every)``: every ``run_every`` (a timedelta or seconds), aligned to the epoch."""

    run_every: timedelta | float

    @property
    def seconds(self) -> float:
        every = self.run_every
        return every.total_seconds() if isinstance(every, timedelta) else every


def add_periodic_task(
    when: crontab | schedule | timedelta | float | str,
    sig: Any,
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
    name: str | None = None,
    **options: Any,
) -> str:
    """Celery's ``app.add_periodic_task``: run ``sig`` (a signature, a task or a task name) on ``when``.

    ``options``: ``queue``, ``expires`` (seconds: an occurrence fired later than that is skipped, and its
    job expires then), ``timezone`` (for cron). Returns the schedule's name (by default from the call).

    Raises:
        ConfigError: a bad schedule or option, or a name already used.
    """
    task = getattr(getattr(sig, "task", sig), "name", sig)
    if not isinstance(task, str):
        raise ConfigError(f"add_periodic_task: expected a signature, a task or a task name, got {sig!r}")
    call_args = tuple(getattr(sig, "args", ())) + tuple(args)
    call_kwargs = {**getattr(sig, "kwargs", {}), **(kwargs or {})}
    sig_options = {k: v for k, v in dict(getattr(sig, "options", {})).items() if k in _OPTIONS}
    raw = {"task": task, "schedule": when, "args": list(call_args), "kwargs": call_kwargs,
           "options": {**sig_options, **options}}  # fmt: skip
    name = name or _default_name(task, call_args, call_kwargs)
    return _add(name, beat_entry(f"add_periodic_task {name!r}", raw))


def add_beat_schedule(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Register Celery's ``beat_schedule`` mapping (name -> task, schedule, args, kwargs, options)."""
    if not isinstance(entries, Mapping):
        raise ConfigError(f"beat_schedule must map names to entries, got {type(entries).__name__}")
    return [_add(str(name), beat_entry(f"beat_schedule {name!r}", raw)) for name, raw in entries.items()]


def code_schedules() -> dict[str, dict[str, Any]]:
    """The schedules registered in code so far, by name, in the periodic file's shape."""
    return {name: dict(entry) for name, entry in _SCHEDULES.items()}


def beat_entry(where: str, raw: Any) -> dict[str, Any]:
    """One Celery ``beat_schedule`` entry in the periodic file's shape (validated there, by the leader).

    Raises:
        ConfigError: not a mapping, a missing or unreadable ``schedule``, or an unknown key or option.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'task' and 'schedule'")
    known = ("task", "schedule", "args", "kwargs", "options", "timezone")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(known)}")
    options = dict(raw.get("options") or {})
    extra = sorted(set(options) - {*_OPTIONS, "timezone"})
    if extra:
        raise ConfigError(f"{where}: option {extra[0]!r} is not supported here; use queue, expires or timezone")
    entry: dict[str, Any] = {"task": raw.get("task"), **_when(where, raw.get("schedule"))}
    entry["args"], entry["kwargs"] = list(raw.get("args") or ()), dict(raw.get("kwargs") or {})
    if options.get("queue") is not None:
        entry["queue"] = options["queue"]
    expires = options.get("expires")
    if expires is not None:
        entry["expires_s"] = expires.total_seconds() if isinstance(expires, timedelta) else expires
    timezone = options.get("timezone", raw.get("timezone"))
    if timezone is not None:
        entry["timezone"] = timezone
    return entry


def _when(where: str, when: Any) -> dict[str, Any]:
    if isinstance(when, crontab):
        return {"cron": when.cron}
    if isinstance(when, schedule | timedelta):
        return {"every_s": when.seconds if isinstance(when, schedule) else when.total_seconds()}
    if isinstance(when, str):
        return {"cron": when}
    if isinstance(when, int | float) and not isinstance(when, bool):
        return {"every_s": when}
    raise ConfigError(
        f"{where}: schedule must be crontab(...), schedule(timedelta), a timedelta, seconds or a cron line, "
        f"got {when!r}"
    )


def _add(name: str, entry: dict[str, Any]) -> str:
    if name in _SCHEDULES and _SCHEDULES[name] != entry:
        raise ConfigError(f"periodic {name!r} is already registered with another schedule; give this one a name=")
    _SCHEDULES[name] = entry
    return name


def _default_name(task: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    if not args and not kwargs:
        return task
    text = json.dumps([list(args), dict(kwargs)], sort_keys=True, default=repr)
    return f"{task}:{hashlib.sha256(text.encode()).hexdigest()[:8]}"
