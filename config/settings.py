"""Typed settings: defaults, then a YAML file, then the environment, then explicit overrides.

Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import yaml

from config.errors import ConfigError
from config.routes import Routes, parse_routes
from config.urls import redact_url

__all__ = [
    "MAX_PAYLOAD_BYTES_LIMIT",
    "NUMBER_LIMITS",
    "Isolation",
    "Settings",
    "check_port",
    "load_settings",
    "writable_dir",
]

Isolation = Literal["inline", "fork"]  # where a worker runs a job: in its own process, or in a forked child
Pool = Literal["threads", "asyncio"]  # how a worker runs `concurrency` jobs at once (docs/tasks.md#execution-modes)

ENV_PREFIX = "TASKRAIL_"
# The ecosystem's own names, read without the prefix.
ECOSYSTEM_ENV = {"REDIS_URL": "redis_url", "SMTP_URL": "smtp_url", "SENTRY_DSN": "sentry_dsn"}
# TASKRAIL_* variables that are not settings fields (read by other tools).
NON_SETTINGS_ENV = {
    "TASKRAIL_CONFIG",
    "TASKRAIL_DASHBOARD_PASSWORD",
    "TASKRAIL_DASHBOARD_TOKEN",
    "TASKRAIL_DASHBOARD_ALLOWED_HOSTS",
}
DEFAULT_IMPORTS = ("tasks.emails", "tasks.reports", "tasks.fanout")
# The highest max_payload_bytes may be set to (4 times the default); workers refuse to decode more.
MAX_PAYLOAD_BYTES_LIMIT = 2 * 1024 * 1024
_DAY_S, _TEN_YEARS_S = 24 * 3600, 10 * 365 * 24 * 3600
_SECONDS, _WHOLE_SECONDS, _WHOLE = "a finite number of seconds", "a whole number of seconds", "a whole number"
# Every numeric setting: what it is, its lowest value (and whether that value itself is allowed) and its
# highest. Past these a value is a typo or a unit mistake; nan and inf are refused too.
NUMBER_LIMITS: dict[str, tuple[str, int, bool, int]] = {
    "max_payload_bytes": ("a whole number of bytes", 1, True, MAX_PAYLOAD_BYTES_LIMIT),
    "result_ttl_s": (_WHOLE_SECONDS, 1, True, _TEN_YEARS_S),
    "failure_ttl_s": (_WHOLE_SECONDS, 1, True, _TEN_YEARS_S),
    "shutdown_timeout_s": (_SECONDS, 0, True, _DAY_S),
    "heartbeat_interval_s": (_SECONDS, 0, False, 3600),
    "heartbeat_ttl_s": (_SECONDS, 0, False, _DAY_S),
    "max_stalled": (_WHOLE, 0, True, 1000),
    "concurrency": (_WHOLE, 1, True, 1024),
    "max_batch": (_WHOLE, 1, True, 10_000),
    "max_jobs": (_WHOLE, 0, True, 10**12),
    "max_memory_mb": (_WHOLE, 0, True, 1024 * 1024),
    "events_maxlen": (_WHOLE, 1, True, 10**9),
}


@dataclass(frozen=True)
class Settings:
    """Everything taskrail reads from its environment, with units in the names."""

    redis_url: str | None = None
    smtp_url: str | None = None
    sentry_dsn: str | None = None
    sentry_send_args: bool = False
    imports: tuple[str, ...] = DEFAULT_IMPORTS
    data_dir: Path = field(default_factory=lambda: Path.cwd() / ".taskrail")
    # The one per-user place naming the running embedded server (config/embedded.py); tests point it elsewhere.
    server_file: Path = field(default_factory=lambda: Path.home() / ".local" / "state" / "taskrail" / "server.json")
    scaling_file: Path = field(default_factory=lambda: Path(__file__).with_name("scaling.yaml"))
    profile: str = "dev"
    max_payload_bytes: int = 512 * 1024
    result_ttl_s: int = 24 * 3600
    failure_ttl_s: int = 7 * 24 * 3600
    shutdown_timeout_s: float = 30.0
    heartbeat_interval_s: float = 1.0
    heartbeat_ttl_s: float = 6.0
    max_stalled: int = 1
    concurrency: int = 1
    isolation: Isolation = "inline"
    pool: Pool = "threads"
    max_batch: int = 32
    max_jobs: int = 0
    max_memory_mb: int = 0
    events_maxlen: int = 10_000
    log_level: str = "INFO"
    always_eager: bool = False  # Celery's task_always_eager: .delay() runs inline (tasks/core/eager.py)
    # Scheduling (docs/scheduling.md): per profile, passed to workers by the supervisor.
    mode: str = "strict"
    queue_weights: tuple[str, ...] = ()
    queue_rate_limits: tuple[str, ...] = ()
    worker_rate_limit: str | None = None
    periodic_file: Path = field(default_factory=lambda: Path(__file__).with_name("periodic.yaml"))
    # Celery's task_routes (config/routes.py): task name or glob -> queue; YAML mapping, or JSON in the environment.
    task_routes: Routes = ()
    # Celery's beat_schedule (name -> task, schedule, args, kwargs, options), merged with periodic_file by the leader.
    beat_schedule: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_routes", parse_routes(self.task_routes, "setting 'task_routes'"))
        for name, limits in NUMBER_LIMITS.items():
            _check_number(name, getattr(self, name), *limits)
        if self.heartbeat_ttl_s <= 2 * self.heartbeat_interval_s:
            raise ConfigError(
                f"heartbeat_ttl_s ({self.heartbeat_ttl_s}) must be more than twice heartbeat_interval_s "
                f"({self.heartbeat_interval_s}), or a busy worker looks dead: raise TASKRAIL_HEARTBEAT_TTL_S"
            )
        if self.mode not in ("strict", "weighted"):
            raise ConfigError(f"setting 'mode' must be 'strict' or 'weighted', got {self.mode!r}")
        if self.isolation not in get_args(Isolation):
            raise ConfigError(f"setting 'isolation' must be 'inline' or 'fork', got {self.isolation!r}")
        if self.pool not in get_args(Pool):
            raise ConfigError(f"setting 'pool' must be 'threads' or 'asyncio', got {self.pool!r}; fix TASKRAIL_POOL")
        if self.isolation == "fork" and self.pool == "asyncio":
            raise ConfigError("isolation 'fork' runs each job in a child process: use pool 'threads' with it")
        if self.isolation == "fork" and self.concurrency > 1:
            raise ConfigError("isolation 'fork' runs one job at a time: set concurrency to 1 for that queue")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"setting 'log_level' must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")
        for url_name in ("redis_url", "smtp_url"):
            url = getattr(self, url_name)
            if url is not None and "://" not in url:
                raise ConfigError(
                    f"setting {url_name!r} must be a URL like redis://host:6379/0, got {redact_url(url)!r}"
                )

    @property
    def outbox_dir(self) -> Path:
        """Where emails go as .eml files when no SMTP_URL is set."""
        return self.data_dir / "outbox"

    @property
    def reports_dir(self) -> Path:
        """Where generated reports are written."""
        return self.data_dir / "reports"

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)


def _check_number(name: str, value: Any, kind: str, low: int, low_ok: bool, high: int) -> None:
    """Raise a ConfigError naming the variable when ``value`` is not finite or not within low..high."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if number and (low <= value <= high if low_ok else low < value <= high):
        return
    shown = str(int(value)) if number and float(value).is_integer() else str(value)  # as written: '0', 'nan'
    span = f"from {low} to {high}" if low_ok else f"above {low} and at most {high}"
    raise ConfigError(
        f"{ENV_PREFIX}{name.upper()} must be {kind} {'>=' if low_ok else '>'} {low}, got {shown!r}; "
        f"set it (or {name} in the settings file) to a value {span}"
    )


def check_port(value: int, option: str = "--port", *, any_free: bool = False) -> int:
    """``value`` if it is a TCP port to listen on: 1 to 65535, or 0 (any free port) when ``any_free``.

    Raises:
        ConfigError: anything else, naming ``option``.
    """
    low = 0 if any_free else 1
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= 65535:
        return value
    free = " (or 0 for any free port)" if any_free else ""
    raise ConfigError(f"{option} must be a port number from 1 to 65535{free}, got {value!r}; pick another port")


def writable_dir(path: Path, variable: str = "TASKRAIL_DATA_DIR") -> Path:
    """``path``, created if missing.

    Raises:
        ConfigError: it cannot be created or written, naming it and ``variable``.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise ConfigError(
            f"{variable} {path}: cannot create or write this directory ({exc.strerror or exc}); "
            f"set {variable} to a writable directory"
        ) from exc
    return path


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from defaults, YAML (``TASKRAIL_CONFIG`` or ``config_file``), environment, overrides.

    Raises:
        ConfigError: an unknown key or a bad value, naming the source and the fix.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get("TASKRAIL_CONFIG")
    if path:
        values.update(_read_yaml(Path(path)))
    values.update(_read_env(env))
    values.update({k: v for k, v in overrides.items() if v is not None})
    hints = get_type_hints(Settings)
    converted = {name: _convert(name, hints[name], raw, "setting") for name, raw in values.items()}
    try:
        return Settings(**converted)
    except TypeError as exc:  # an override with an unknown name
        raise ConfigError(f"unknown setting: {exc}") from exc


def _field_names() -> set[str]:
    return {f.name for f in fields(Settings)}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the settings file ({exc.strerror}); fix TASKRAIL_CONFIG") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of setting names to values")
    unknown = sorted(set(data) - _field_names())
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {unknown[0]!r}; known settings: {', '.join(sorted(_field_names()))}"
        )
    return dict(data)


def _read_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for var, name in ECOSYSTEM_ENV.items():
        if env.get(var):
            values[name] = env[var]
    known = _field_names()
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or var in NON_SETTINGS_ENV:
            continue
        name = var[len(ENV_PREFIX) :].lower()
        if name not in known:
            raise ConfigError(
                f"environment variable {var} is not a taskrail setting; unset it or use one of "
                + ", ".join(ENV_PREFIX + n.upper() for n in sorted(known))
            )
        values[name] = raw
    return values


def _convert(name: str, hint: Any, raw: Any, source: str) -> Any:
    """Turn a YAML or environment value into the field's type, or raise a ConfigError naming it."""
    text = str(hint)
    if name == "task_routes":
        return parse_routes(raw, f"{source} 'task_routes' (TASKRAIL_TASK_ROUTES or task_routes in the settings file)")
    if name == "beat_schedule":
        return _beat_schedule(raw)
    try:
        if raw is None or (isinstance(raw, str) and raw == "" and "None" in text):
            return None
        if "tuple" in text:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if "Path" in text:
            return Path(str(raw)).expanduser()
        if text.startswith("bool") or hint is bool:
            return _to_bool(raw)
        if hint is int or text == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if hint is float or text == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{source} {name!r}: cannot read {raw!r} as {text}; fix the value") from exc


def _beat_schedule(raw: Any) -> dict[str, Any]:
    where = "setting 'beat_schedule' (TASKRAIL_BEAT_SCHEDULE as JSON, or beat_schedule in the settings file)"
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise ConfigError(
                f'{where}: invalid JSON ({exc}); write {{"name": {{"task": ..., "schedule": 30}}}}'
            ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of names to entries (task, schedule, args, kwargs, options)")
    return dict(raw)


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    lowered = str(raw).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
