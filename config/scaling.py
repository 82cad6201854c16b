"""Scaling profiles: how many worker processes serve each queue, read strictly from ``config/scaling.yaml``.

:func:`load_scaling` reads the whole file and :func:`load_profile` picks one profile. Every problem
is reported at once, each on its own line naming the file, the profile, the queue, the key and the fix.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, get_args

import yaml

from config.errors import ConfigError
from config.settings import Isolation

__all__ = ["Autoscale", "Profile", "QueuePlan", "ScalingFile", "load_profile", "load_scaling"]

MODES = ("strict", "weighted")
ISOLATIONS: tuple[Isolation, ...] = get_args(Isolation)
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")  # no dots: worker names are node.queue.index
Choice = TypeVar("Choice", bound=str)
RATE = re.compile(r"\s*\d+(\.\d+)?\s*/\s*\d*\s*[smh]\s*")
TOP_KEYS = ("queues", "profiles")
PROFILE_KEYS = ("mode", "defaults", "queues")
AUTOSCALE_KEYS = ("min", "max", "backlog_per_worker", "max_wait_s", "cooldown_s")
QUEUE_KEYS = ("workers", "also", "concurrency", "isolation", "weight", "rate_limit", "autoscale", "max_jobs",
              "max_memory_mb", "shutdown_timeout_s", "max_restarts", "max_seconds")  # fmt: skip
BUILTIN_DEFAULTS: dict[str, Any] = {
    "workers": 0, "also": [], "concurrency": 1, "isolation": "inline", "weight": 1, "rate_limit": None,
    "autoscale": None, "max_jobs": 0, "max_memory_mb": 0, "shutdown_timeout_s": 30, "max_restarts": 5,
    "max_seconds": 60,
}  # fmt: skip


@dataclass(frozen=True)
class Autoscale:
    """Grow from ``min`` to ``max`` workers when the backlog or the oldest job's wait passes its trigger."""

    min: int
    max: int
    backlog_per_worker: int | None = None
    max_wait_s: float | None = None
    cooldown_s: float = 60.0


@dataclass(frozen=True)
class QueuePlan:
    """What one profile says about one queue; zero and empty values mean "off"."""

    name: str
    workers: int
    also: tuple[str, ...] = ()
    concurrency: int = 1
    isolation: Isolation = "inline"
    weight: int = 1
    rate_limit: str | None = None
    autoscale: Autoscale | None = None
    max_jobs: int = 0
    max_memory_mb: int = 0
    shutdown_timeout_s: float = 30.0
    max_restarts: int = 5
    max_seconds: float = 60.0

    @property
    def listens(self) -> tuple[str, ...]:
        """The queues this queue's workers take jobs from, in priority order."""
        return (self.name, *self.also)


@dataclass(frozen=True)
class Profile:
    """One named profile: queue plans in priority order, highest first."""

    name: str
    mode: str
    queues: tuple[QueuePlan, ...]
    source: Path = field(default=Path("config/scaling.yaml"), compare=False)

    def queue(self, name: str) -> QueuePlan:
        """The plan for queue ``name``.

        Raises:
            ConfigError: the profile has no such queue.
        """
        for plan in self.queues:
            if plan.name == name:
                return plan
        known = ", ".join(p.name for p in self.queues)
        raise ConfigError(f"{self.source}: profile {self.name!r} has no queue {name!r}; known queues: {known}")

    @property
    def total_workers(self) -> int:
        return sum(plan.workers for plan in self.queues)

    def unserved(self) -> tuple[str, ...]:
        """Queues no worker of this profile listens to (jobs there would wait forever)."""
        served = {q for plan in self.queues if plan.workers or plan.autoscale for q in plan.listens}
        return tuple(plan.name for plan in self.queues if plan.name not in served)

    def with_workers(self, counts: Mapping[str, int]) -> Profile:
        """A copy with some queues' worker counts replaced."""
        plans = tuple(replace(p, workers=counts[p.name]) if p.name in counts else p for p in self.queues)
        return replace(self, queues=plans)


@dataclass(frozen=True)
class ScalingFile:
    """A whole scaling file: every queue in priority order and every profile."""

    path: Path
    queues: tuple[str, ...]
    profiles: Mapping[str, Profile]

    def profile(self, name: str) -> Profile:
        """The profile called ``name``.

        Raises:
            ConfigError: no such profile; the message lists the ones there are.
        """
        if name not in self.profiles:
            raise ConfigError(
                f"{self.path}: no profile {name!r}{_suggest(name, self.profiles)}; "
                f"profiles in this file: {', '.join(self.profiles)} (choose one with --profile or TASKRAIL_PROFILE)"
            )
        return self.profiles[name]


def load_scaling(path: str | Path) -> ScalingFile:
    """Read and validate a whole scaling file.

    Raises:
        ConfigError: the file is missing, is not YAML, or breaks a rule; all problems in one message.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the scaling file ({exc.strerror}); fix the path (--file or TASKRAIL_SCALING_FILE)"
        ) from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{path}: invalid YAML{at}: {problem}; fix the syntax") from exc
    checker = _Checker(path)
    result = checker.file(data)
    if checker.problems:
        raise ConfigError("\n".join(checker.problems))
    assert result is not None
    return result


def load_profile(path: str | Path, name: str) -> Profile:
    """Read ``path`` (all of it is validated) and return profile ``name``."""
    return load_scaling(path).profile(name)


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    """Walks the parsed YAML and collects one message per problem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path}: {where}{message}")

    def keys(self, where: str, data: Mapping[Any, Any], allowed: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                self.fail(where, f"unknown key {key!r}{_suggest(key, allowed)}; allowed keys: {', '.join(allowed)}")

    def file(self, data: Any) -> ScalingFile | None:
        if not isinstance(data, dict):
            self.fail("", "expected a mapping with 'queues' and 'profiles' at the top level")
            return None
        self.keys("", data, TOP_KEYS)
        queues = self.queue_list(data.get("queues"))
        raw_profiles = data.get("profiles")
        if not isinstance(raw_profiles, dict) or not raw_profiles:
            self.fail("", "'profiles' must map profile names (like dev, production) to profiles; add at least one")
            return None
        profiles = {}
        for name, raw in raw_profiles.items():
            profile = self.profile(str(name), raw, queues)
            if profile is not None:
                profiles[str(name)] = profile
        return ScalingFile(self.path, queues, MappingProxyType(profiles))

    def queue_list(self, raw: Any) -> tuple[str, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail("", "'queues' must be a list of queue names in priority order, e.g. [critical, default]")
            return ()
        names: list[str] = []
        for item in raw:
            if not isinstance(item, str) or not QUEUE_NAME.fullmatch(item):
                self.fail("", f"queues: {item!r} is not a queue name (letters, digits, '_' and '-'); rename it")
            elif item in names:
                self.fail("", f"queues: {item!r} is listed twice; keep one")
            else:
                names.append(item)
        return tuple(names)

    def profile(self, name: str, raw: Any, queues: tuple[str, ...]) -> Profile | None:
        where = f"profile {name!r}: "
        if not isinstance(raw, dict):
            self.fail(where, "expected a mapping with 'mode', 'defaults' and 'queues'")
            return None
        self.keys(where, raw, PROFILE_KEYS)
        mode = raw.get("mode", "strict")
        if mode not in MODES:
            self.fail(where, f"mode must be 'strict' or 'weighted', got {mode!r}")
        defaults = raw.get("defaults") or {}
        if not isinstance(defaults, dict):
            self.fail(where, f"defaults must be a mapping of queue settings, got {defaults!r}")
            defaults = {}
        self.keys(where + "defaults: ", defaults, tuple(k for k in QUEUE_KEYS if k != "also"))
        raw_queues = raw.get("queues") or {}
        if not isinstance(raw_queues, dict):
            self.fail(where, "queues must map queue names to their settings")
            raw_queues = {}
        for qname in raw_queues:
            if qname not in queues:
                self.fail(where, f"unknown queue {qname!r}{_suggest(qname, queues)}; add it to the top-level "
                          f"'queues' list or use one of: {', '.join(queues)}")  # fmt: skip
        plans = []
        for qname in queues:
            settings = raw_queues.get(qname) or {}
            if not isinstance(settings, dict):
                self.fail(f"{where}queue {qname!r}: ", f"expected a mapping like {{workers: 1}}, got {settings!r}")
                settings = {}
            self.keys(f"{where}queue {qname!r}: ", settings, QUEUE_KEYS)
            merged = {**BUILTIN_DEFAULTS, **defaults, **settings}
            plans.append(self.plan(f"{where}queue {qname!r}: ", qname, merged, queues))
        if plans and not any(p.workers or p.autoscale for p in plans):
            self.fail(where, "no queue has workers, nothing would run; give at least one queue workers: 1")
        elif plans and not any(p.autoscale.min if p.autoscale else p.workers for p in plans):
            self.fail(where, "every queue may scale to zero workers; with none running nothing promotes delayed "
                      "jobs or retries, fires periodic tasks or recovers dead workers' jobs (and KEDA cannot see "
                      "delayed jobs to wake up): give one queue autoscale min: 1")  # fmt: skip
        return Profile(name, str(mode), tuple(plans), self.path)

    def plan(self, where: str, name: str, s: dict[str, Any], queues: tuple[str, ...]) -> QueuePlan:
        plan = QueuePlan(
            name=name,
            workers=self.integer(where, "workers", s["workers"], 0),
            also=self.also(where, name, s["also"], queues),
            concurrency=self.integer(where, "concurrency", s["concurrency"], 1),
            isolation=self.choice(where, "isolation", s["isolation"], ISOLATIONS),
            weight=self.integer(where, "weight", s["weight"], 1),
            rate_limit=self.rate(where, s["rate_limit"]),
            autoscale=self.autoscale(where, s["autoscale"]),
            max_jobs=self.integer(where, "max_jobs", s["max_jobs"] or 0, 0),
            max_memory_mb=self.integer(where, "max_memory_mb", s["max_memory_mb"] or 0, 0),
            shutdown_timeout_s=self.number(where, "shutdown_timeout_s", s["shutdown_timeout_s"], 0),
            max_restarts=self.integer(where, "max_restarts", s["max_restarts"], 0),
            max_seconds=self.number(where, "max_seconds", s["max_seconds"], 0.001),
        )
        if plan.isolation == "fork" and plan.concurrency > 1:
            self.fail(where, f"isolation 'fork' runs one job at a time; set concurrency to 1, got {plan.concurrency}")
        scale = plan.autoscale
        if scale and not scale.min <= plan.workers <= scale.max:
            self.fail(where, f"workers ({plan.workers}) must lie within autoscale min..max ({scale.min}..{scale.max})")
        return plan

    def integer(self, where: str, key: str, value: Any, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            kind = "a positive integer" if low == 1 else "an integer 0 or more"
            self.fail(where, f"{key} must be {kind}, got {value!r}; fix the value")
            return max(low, 0)
        return value

    def number(self, where: str, key: str, value: Any, low: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value < math.inf:  # nan too
            kind = "a finite number of seconds above 0" if low > 0 else "a finite number 0 or more"
            self.fail(where, f"{key} must be {kind}, got {value!r}; fix the value")
            return max(low, 0.0)
        return float(value)

    def choice(self, where: str, key: str, value: Any, allowed: tuple[Choice, ...]) -> Choice:
        if value not in allowed:
            self.fail(where, f"{key} must be one of {', '.join(allowed)}, got {value!r}")
            return allowed[0]
        return allowed[allowed.index(value)]

    def rate(self, where: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not RATE.fullmatch(value):
            self.fail(where, f"rate_limit must look like '20/s', '100/m' or '5/10s', got {value!r}")
            return None
        return value.replace(" ", "")

    def also(self, where: str, name: str, value: Any, queues: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(where, f"also must be a list of lower-priority queue names, got {value!r}")
            return ()
        for other in value:
            if other not in queues:
                self.fail(where, f"also: unknown queue {other!r}{_suggest(other, queues)}; known: {', '.join(queues)}")
            elif queues.index(other) <= queues.index(name):
                self.fail(where, f"also: {other!r} is not lower in priority than {name!r}; list only queues "
                          "after it in the top-level 'queues' list")  # fmt: skip
        if len(set(value)) != len(value):
            self.fail(where, "also: a queue is listed twice; keep one")
        return tuple(str(v) for v in value if v in queues)

    def autoscale(self, where: str, value: Any) -> Autoscale | None:
        if value is None:
            return None
        where += "autoscale: "
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping like {{min: 1, max: 4, backlog_per_worker: 100}}, got {value!r}")
            return None
        self.keys(where, value, AUTOSCALE_KEYS)
        for key in ("min", "max"):
            if key not in value:
                self.fail(where, f"{key} is missing; give both min and max")
        low = self.integer(where, "min", value.get("min", 0), 0)
        high = self.integer(where, "max", value.get("max", 1), 1)
        if low > high:
            self.fail(where, f"min ({low}) is above max ({high}); swap them")
        backlog = value.get("backlog_per_worker")
        wait = value.get("max_wait_s")
        if backlog is None and wait is None:
            self.fail(where, "no trigger: give backlog_per_worker, max_wait_s or both")
        return Autoscale(
            min=low,
            max=high,
            backlog_per_worker=None if backlog is None else self.integer(where, "backlog_per_worker", backlog, 1),
            max_wait_s=None if wait is None else self.number(where, "max_wait_s", wait, 0.001),
            cooldown_s=self.number(where, "cooldown_s", value.get("cooldown_s", 60), 0),
        )
