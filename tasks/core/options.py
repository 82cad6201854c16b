"""Per-task options, declared once and validated when ``@task`` runs (not when a job fails at 3 a.m.)."""

from __future__ import annotations

import hashlib
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args

from config.errors import ConfigError
from tasks.core import validate
from tasks.core.celery_options import ACCEPTED, absorb, unknown_option
from tasks.core.protocol import UniqueMode

__all__ = ["RateLimit", "TaskOptions", "parse_rate_limit"]

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*([smh])\s*")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class RateLimit:
    """``count`` starts per ``period_s`` seconds."""

    count: float
    period_s: float

    def __str__(self) -> str:
        return f"{self.count:g}/{self.period_s:g}s"

    def window(self) -> tuple[int, float]:
        """The same rate as a whole number of starts per window: ``2.5/s`` -> (5, 2.0), ``0.5/s`` -> (1, 2.0)."""
        count = max(1, math.floor(self.count))
        return count, self.period_s * count / self.count


def parse_rate_limit(text: str) -> RateLimit:
    """Parse Celery's rate syntax: ``"10/s"``, ``"100/m"``, ``"5/10s"``, ``"1000/h"``."""
    match = _RATE.fullmatch(str(text))
    if not match or not 0 < float(match.group(1)) < math.inf or not float(match.group(2) or 1) < math.inf:
        raise ConfigError(f"rate limit {text!r} is not like '10/s', '100/m' or '5/10s'")
    multiple = float(match.group(2)) if match.group(2) else 1.0
    return RateLimit(float(match.group(1)), multiple * _UNIT_S[match.group(3)])


@dataclass(frozen=True)
class TaskOptions:
    """Everything ``@task(...)`` accepts; names and meanings follow Celery's where Celery has one."""

    name: str
    queue: str = "default"
    priority: int | None = None
    max_retries: int | None = 3  # None: retry forever (Celery's meaning)
    autoretry_for: tuple[type[BaseException], ...] = ()
    dont_autoretry_for: tuple[type[BaseException], ...] = ()
    retry_backoff: float = 1.0
    retry_backoff_max: float = 600.0
    retry_jitter: bool = True
    time_limit: float | None = None
    soft_time_limit: float | None = None
    default_retry_delay: float | None = None  # None: retry_backoff; else the fixed delay of every retry
    expires: float | datetime | None = None  # seconds after enqueue, or a datetime: later, the job is revoked
    typing: bool = True
    throws: tuple[type[BaseException], ...] = ()
    rate_limit: RateLimit | None = None
    ignore_result: bool = False
    result_ttl: int | None = None
    bind: bool = False
    unique: bool = False
    unique_mode: str = "until_complete"
    unique_ttl_s: float = 0
    limit_key: str | Callable[..., Any] | None = None
    concurrency_limit: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, func: Callable[..., Any], **raw: Any) -> TaskOptions:
        """Validate ``raw`` options for ``func`` and return them, or raise a ConfigError naming the option."""
        where = f"@task on {func.__module__}.{func.__qualname__}"
        known = {f for f in cls.__dataclass_fields__ if f != "extra"} | {"retry_kwargs"}
        unknown = sorted(set(raw) - known - set(ACCEPTED))
        if unknown:
            raise unknown_option(where, unknown[0], known | set(ACCEPTED) | {"base"})
        name = raw.pop("name", None) or f"{func.__module__}.{func.__qualname__}"
        opts = dict(raw)
        opts["extra"] = absorb(where, opts)
        opts.update(_retry_kwargs(where, opts.pop("retry_kwargs", None)))
        if "rate_limit" in opts and opts["rate_limit"] is not None:
            opts["rate_limit"] = parse_rate_limit(opts["rate_limit"])
        if "retry_backoff" in opts and isinstance(opts["retry_backoff"], bool):
            opts["retry_backoff"] = 1.0 if opts["retry_backoff"] else 0.0
        for listed in ("autoretry_for", "dont_autoretry_for", "throws"):
            if listed in opts:
                opts[listed] = _exception_tuple(where, listed, opts[listed])
        options = cls(name=name, **opts)
        options.validate(where)
        if isinstance(options.limit_key, str):
            params = list(inspect.signature(func).parameters)[1 if options.bind else 0 :]
            if options.limit_key not in params:
                raise ConfigError(
                    f"{where}: limit_key {options.limit_key!r} is not a parameter; "
                    f"name one of {', '.join(params) or '(none)'} or pass a function of the arguments"
                )
        return options

    def validate(self, where: str) -> None:
        """Raise a ConfigError for the first bad value, saying what would be right."""
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"{where}: name must be a non-empty string")
        validate.queue_name(self.queue, where)
        validate.priority(self.priority, where)
        if self.max_retries is not None and (not _is_int(self.max_retries) or self.max_retries < 0):
            raise ConfigError(
                f"{where}: max_retries must be an integer >= 0 (or None: retry forever), got {self.max_retries!r}"
            )
        longest = validate.MAX_DELAY_S  # also refuses nan and inf
        for opt in ("retry_backoff", "retry_backoff_max", "default_retry_delay"):
            value = getattr(self, opt)
            if value is None and opt == "default_retry_delay":
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= longest:
                raise ConfigError(
                    f"{where}: {opt} must be a number of seconds >= 0 and at most {longest}, got {value!r}"
                )
        for opt in ("time_limit", "soft_time_limit"):
            limit = getattr(self, opt)
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 < limit <= longest
            ):
                raise ConfigError(
                    f"{where}: {opt} must be a positive number of seconds, at most {longest}, got {limit!r}"
                )
        if self.expires is not None and not isinstance(self.expires, datetime):
            validate.countdown(self.expires, f"{where}: expires")
        if self.result_ttl is not None and (not _is_int(self.result_ttl) or self.result_ttl < -1):
            raise ConfigError(f"{where}: result_ttl must be seconds (or -1 to keep forever), got {self.result_ttl!r}")
        for flag in ("retry_jitter", "ignore_result", "bind", "unique", "typing"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{where}: {flag} must be True or False, got {getattr(self, flag)!r}")
        self._validate_unique(where)
        if self.concurrency_limit is not None and (not _is_int(self.concurrency_limit) or self.concurrency_limit < 1):
            raise ConfigError(f"{where}: concurrency_limit must be an integer >= 1, got {self.concurrency_limit!r}")
        if self.limit_key is not None:
            if not (isinstance(self.limit_key, str) or callable(self.limit_key)):
                raise ConfigError(f"{where}: limit_key must be a parameter name or a function, got {self.limit_key!r}")
            if self.rate_limit is None and self.concurrency_limit is None:
                raise ConfigError(f"{where}: limit_key needs rate_limit or concurrency_limit to count per key")

    def _validate_unique(self, where: str) -> None:
        modes = get_args(UniqueMode)
        if self.unique_mode not in modes:
            raise ConfigError(f"{where}: unique_mode must be one of {', '.join(modes)}, got {self.unique_mode!r}")
        ttl = self.unique_ttl_s
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 <= ttl <= validate.MAX_DELAY_S:
            raise ConfigError(f"{where}: unique_ttl_s must be seconds >= 0, got {ttl!r}")
        if self.unique_mode == "throttle" and not ttl:
            raise ConfigError(f"{where}: unique_mode 'throttle' needs unique_ttl_s > 0")

    def limit_fields(
        self, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, str | int]:
        """Job-hash fields the CLAIM script reads to apply this task's limits to one call.

        ``signature`` is the task function's (a bound task's context parameter is skipped).

        Raises:
            ConfigError: the limit_key function raised, naming the task.
        """
        fields: dict[str, str | int] = {}
        if self.rate_limit is not None:
            count, period = self.rate_limit.window()
            fields["tr_rate"] = f"{count}/{period:g}"
        if self.concurrency_limit is not None:
            fields["tr_conc"] = self.concurrency_limit
        if self.limit_key is not None:
            try:
                if callable(self.limit_key):
                    value = self.limit_key(*args, **kwargs)
                else:
                    params = list(signature.parameters.values())[1 if self.bind else 0 :]
                    bound = signature.replace(parameters=params).bind(*args, **kwargs)
                    bound.apply_defaults()
                    value = bound.arguments[self.limit_key]
            except Exception as exc:
                raise ConfigError(f"{self.name}: limit_key could not compute a key for this call: {exc}") from exc
            text = str(value)
            fields["tr_limit_key"] = text if len(text) <= 100 else hashlib.sha256(text.encode()).hexdigest()
        return fields

    def backoff_s(self, retries_done: int, jitter: float) -> float:
        """Delay before retry number ``retries_done + 1``: ``retry_backoff * 2**n``, capped, jittered.

        ``jitter`` is a random number in [0, 1); with ``retry_jitter`` the delay is scaled by it
        within [delay/2, delay] so retries of many jobs spread out but never fire at once.
        """
        if self.default_retry_delay is not None:
            return float(self.default_retry_delay)
        delay = min(self.retry_backoff * (2**retries_done), self.retry_backoff_max)
        if self.retry_jitter:
            delay = delay / 2 + delay / 2 * jitter
        return float(delay)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _exception_tuple(where: str, option: str, value: Any) -> tuple[type[BaseException], ...]:
    items = value if isinstance(value, list | tuple) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigError(f"{where}: {option} must hold exception classes, got {item!r}")
    return tuple(items)


def _retry_kwargs(where: str, value: Any) -> dict[str, Any]:
    """Celery's ``retry_kwargs`` for autoretry: ``max_retries`` and ``countdown`` (a fixed delay)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - {"max_retries", "countdown"}:
        raise ConfigError(f"{where}: retry_kwargs takes a dict of max_retries and countdown, got {value!r}")
    mapped = {"max_retries": value["max_retries"]} if "max_retries" in value else {}
    if "countdown" in value:
        mapped["default_retry_delay"] = value["countdown"]
    return mapped
