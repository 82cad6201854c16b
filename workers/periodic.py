"""Periodic tasks: cron-style schedules from configuration, each occurrence enqueued exactly once.

The schedules come from ``config/periodic.yaml`` (or the file ``TASKRAIL_PERIODIC_FILE`` names), the
``beat_schedule`` setting and code (``tasks.schedules.add_periodic_task``, Celery's API), validated
strictly when a worker starts. Only the elected leader (workers/maintenance.py) fires
them, and each firing is one transaction that checks and advances the schedule's last occurrence
in ``taskrail:periodic`` (a hash: name -> epoch seconds) together with the enqueue, so however
many workers, supervisors and machines run, and however leadership moves, an occurrence is
enqueued once. Occurrences missed while no worker ran are coalesced into one run, and one later than
its schedule's ``expires_s`` is skipped (Celery's ``expires``: no thundering herd after downtime).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
import yaml
from croniter import croniter

from config.errors import ConfigError, TaskrailError
from config.settings import Settings
from tasks.core import keys, validate
from tasks.core.client import Client
from tasks.core.protocol import JobSpec
from tasks.core.registry import lookup
from tasks.schedules import beat_entry, code_schedules

__all__ = ["PERIODIC_KEY", "PeriodicEntry", "PeriodicScheduler", "check_periodic", "check_schedules", "load_periodic"]

log = logging.getLogger("taskrail.periodic")

PERIODIC_KEY = keys.PERIODIC
ENTRY_KEYS = ("task", "cron", "every_s", "args", "kwargs", "queue", "timezone", "expires_s")
NAME = re.compile(r"[A-Za-z0-9_.:-]([A-Za-z0-9_.:\- ]{0,98}[A-Za-z0-9_.:-])?")
MIN_EVERY_S = 0.5


@dataclass(frozen=True)
class PeriodicEntry:
    """One schedule: which task to enqueue, with which arguments, and when."""

    name: str
    task: str
    cron: str | None = None
    every_s: float | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    timezone: str = "UTC"
    expires_s: float | None = None

    def latest(self, at: float) -> float:
        """The last occurrence at or before ``at`` (epoch seconds)."""
        if self.every_s is not None:
            return math.floor(at / self.every_s) * self.every_s
        start = datetime.fromtimestamp(math.floor(at) + 1, ZoneInfo(self.timezone))
        return float(croniter(self.cron, start).get_prev(float))

    def following(self, after: float) -> float:
        """The first occurrence strictly after ``after``."""
        if self.every_s is not None:
            return (math.floor(after / self.every_s) + 1) * self.every_s
        start = datetime.fromtimestamp(after, ZoneInfo(self.timezone))
        return float(croniter(self.cron, start).get_next(float))


def load_periodic(path: Path) -> list[PeriodicEntry]:
    """Read and validate a periodic file strictly; a missing file means no schedules.

    Raises:
        ConfigError: bad YAML, an unknown key or a bad value, naming the file, schedule and fix.
    """
    return [_entry(f"{path}: periodic '{name}'", str(name), raw) for name, raw in _section(path).items()]


def check_periodic(path: Path) -> tuple[list[PeriodicEntry], list[str]]:
    """The usable schedules of a periodic file, and one message (file, entry, fix) per bad entry.

    An entry is bad if its shape or values are wrong, its task is not registered in this process
    (``TASKRAIL_IMPORTS``), or its arguments do not fit the task's signature. The leader skips bad
    entries and fires the rest; ``taskrail periodic check`` prints them.

    Raises:
        ConfigError: the file as a whole is unreadable or not a ``periodic:`` mapping.
    """
    entries: list[PeriodicEntry] = []
    problems: list[str] = []
    for name, raw in _section(path).items():
        where = f"{path}: periodic '{name}'"
        try:
            entry = _entry(where, str(name), raw)
            _check_task(where, entry)
        except ConfigError as exc:
            problems.append(str(exc))
        else:
            entries.append(entry)
    return entries, problems


def check_schedules(settings: Settings) -> tuple[list[PeriodicEntry], list[str]]:
    """:func:`check_periodic` over every source: the periodic file, the ``beat_schedule`` setting and the
    schedules registered in code (import the task modules first). A name used twice is a problem."""
    entries, problems = check_periodic(settings.periodic_file)
    origin = dict.fromkeys((e.name for e in entries), str(settings.periodic_file))
    sources = [("the beat_schedule setting", settings.beat_schedule, True), ("code", code_schedules(), False)]
    for source, schedules, celery_shape in sources:
        for name, raw in schedules.items():
            where = f"{source}: periodic '{name}'"
            try:
                if str(name) in origin:
                    raise ConfigError(f"{where}: the name is also used in {origin[str(name)]}; rename one of them")
                entry = _entry(where, str(name), beat_entry(where, raw) if celery_shape else raw)
                _check_task(where, entry)
            except ConfigError as exc:
                problems.append(str(exc))
            else:
                entries.append(entry)
                origin[entry.name] = source
    return entries, problems


def _section(path: Path) -> dict[Any, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read periodic schedules: {exc}") from exc
    if not isinstance(data, dict) or set(data) - {"periodic"}:
        raise ConfigError(f"{path}: expected one top-level key 'periodic' mapping names to schedules")
    section = data.get("periodic") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'periodic' must map schedule names to schedules, got {type(section).__name__}")
    return section


def _check_task(where: str, entry: PeriodicEntry) -> None:
    registered = lookup(entry.task)
    if registered is None:
        raise ConfigError(
            f"{where}: task {entry.task!r} is not registered here; fix the name, or add the module that "
            "defines it to TASKRAIL_IMPORTS"
        )
    try:
        registered.check_arguments(entry.args, entry.kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}; fix its args/kwargs to fit the task's parameters") from exc


def _entry(where: str, name: str, raw: Any) -> PeriodicEntry:
    if not NAME.fullmatch(name):
        raise ConfigError(f"{where}: the name must be letters, digits, '_', '.', ':' or '-'")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with task and cron (or every_s)")
    unknown = sorted(set(raw) - set(ENTRY_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(ENTRY_KEYS)}")
    task = raw.get("task")
    if not isinstance(task, str) or not task:
        raise ConfigError(f"{where}: 'task' must name a registered task, e.g. tasks.reports.generate_report")
    cron, every = raw.get("cron"), raw.get("every_s")
    if (cron is None) == (every is None):
        raise ConfigError(f"{where}: give exactly one of 'cron' (e.g. '0 2 * * *') or 'every_s' (seconds)")
    if cron is not None and (
        not isinstance(cron, str) or len(cron.split()) not in (5, 6) or not croniter.is_valid(cron)
    ):
        raise ConfigError(f"{where}: cron {cron!r} is not 5 fields (minute hour day month weekday), plus seconds last")
    if every is not None and (
        isinstance(every, bool)
        or not isinstance(every, int | float)
        or not MIN_EVERY_S <= every <= validate.MAX_DELAY_S
    ):
        raise ConfigError(
            f"{where}: every_s must be a number of seconds >= {MIN_EVERY_S} and at most {validate.MAX_DELAY_S} "
            f"(10 years), got {every!r}"
        )
    args, kwargs = raw.get("args", []), raw.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ConfigError(f"{where}: 'args' must be a list and 'kwargs' a mapping")
    try:
        json.dumps([args, kwargs], allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: args and kwargs must be plain JSON values: {exc}") from exc
    queue = raw.get("queue")
    if queue is not None:
        validate.queue_name(queue, where)
    timezone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: timezone {timezone!r} is not an IANA name like 'UTC' or 'Europe/Paris'") from exc
    every_s = float(every) if every is not None else None
    expires = _expires_s(where, raw.get("expires_s"))
    return PeriodicEntry(name, task, cron, every_s, tuple(args), dict(kwargs), queue, str(timezone), expires)


def _expires_s(where: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= validate.MAX_DELAY_S:
        raise ConfigError(f"{where}: expires_s must be a number of seconds > 0 (a late occurrence is skipped), "
                          f"got {value!r}")  # fmt: skip
    return float(value)


class PeriodicScheduler:
    """Fires due schedules; the leader calls :meth:`tick` often (it touches Redis only when one is due)."""

    def __init__(self, conn: redis.Redis, settings: Settings) -> None:
        self.entries, problems = check_schedules(settings)
        for problem in problems:  # one bad schedule never stops a worker: skip it, say why, fire the rest
            log.error("skipping a periodic schedule: %s", problem)
        self.conn = conn
        self.client = Client(settings, conn)
        self._next: dict[str, float] = {}

    def tick(self, now: float | None = None) -> int:
        """Enqueue every schedule whose occurrence is due; returns how many were enqueued."""
        now = time.time() if now is None else now
        fired = 0
        for entry in self.entries:
            if now >= self._next.get(entry.name, 0.0):
                try:
                    fired += self._fire(entry, now)
                except TaskrailError as exc:  # e.g. arguments too large: skip this occurrence, say why
                    log.error("periodic %s: cannot enqueue %s: %s", entry.name, entry.task, exc)
                    self._next[entry.name] = entry.following(now)
        return fired

    def _fire(self, entry: PeriodicEntry, now: float) -> int:
        due = entry.latest(now)
        with self.conn.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(PERIODIC_KEY)
                raw: Any = pipe.hget(PERIODIC_KEY, entry.name)  # immediate while watching: bytes or None
                if raw is None:  # a new schedule starts with the next occurrence, not a past one
                    pipe.multi()
                    pipe.hset(PERIODIC_KEY, entry.name, repr(now))
                    pipe.execute()
                    self._next[entry.name] = entry.following(now)
                    return 0
                last = float(raw)
                if due <= last:
                    self._next[entry.name] = entry.following(last)
                    return 0
                late = entry.expires_s is not None and now - due > entry.expires_s
                spec = None if late else self._spec(entry, due)
                pipe.multi()
                pipe.hset(PERIODIC_KEY, entry.name, repr(due))
                if spec is not None:
                    self.client.enqueue_in(pipe, spec)
                pipe.execute()
            except redis.WatchError:
                return 0  # another leader moved the schedule meanwhile: look again next tick
        self._next[entry.name] = entry.following(due)
        if spec is None:
            log.warning("periodic %s: skipped the occurrence of %s, %.1f s late, past its expires_s (%s s)",
                        entry.name, _iso(due), now - due, entry.expires_s)  # fmt: skip
            return 0
        log.info("periodic %s: enqueued %s (job %s) for %s", entry.name, entry.task, spec.job_id, _iso(due))
        return 1

    def _spec(self, entry: PeriodicEntry, due: float) -> JobSpec:
        registered = lookup(entry.task)
        if registered is None:  # checked when the scheduler was built; tasks are never unregistered
            raise ConfigError(f"periodic '{entry.name}': task {entry.task!r} is not registered here")
        options: dict[str, Any] = {"queue": entry.queue} if entry.queue else {}
        if entry.expires_s is not None:  # a job the workers start later than that is revoked, as in Celery
            options["expires"] = datetime.fromtimestamp(due + entry.expires_s, UTC)
        spec = registered.build_job(entry.args, entry.kwargs, self.client, **options)
        spec.fields["tr_periodic"] = f"{entry.name}@{due:.3f}"
        return spec


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
