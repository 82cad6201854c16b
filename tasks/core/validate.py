"""The one check of each value a job's place and time come from: queue name, priority, countdown, eta.

Every path that takes one of them calls these functions before anything is written: ``@task``
options, ``apply_async``, canvas signatures, the HTTP API, the CLI and the periodic schedule. Each
raises a ``ConfigError`` that names where the value came from, what was wrong and what would be right.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from config.errors import ConfigError

__all__ = ["MAX_DELAY_S", "QUEUE_NAME", "countdown", "eta", "is_queue_name", "priority", "queue_name", "run_at"]

# Checked with fullmatch: "$" would also match before a trailing newline ("email\n").
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
QUEUE_NAME_RULE = "1-100 letters, digits, '_', '.' or '-'"
PRIORITY_MIN, PRIORITY_MAX = 0, 9
# The furthest a job may be scheduled ahead (10 years): further is a unit mistake, and would sit in
# the schedule forever.
MAX_DELAY_S = 10 * 365 * 24 * 3600


def is_queue_name(value: Any) -> bool:
    """Whether ``value`` is a usable queue name (RQ's keys and taskrail's scripts take it as is)."""
    return isinstance(value, str) and bool(QUEUE_NAME.fullmatch(value))


def queue_name(value: Any, where: str = "") -> str:
    """``value`` if it is a queue name.

    Raises:
        ConfigError: not a string of 1-100 letters, digits, '_', '.' or '-'; the message says which part is wrong.
    """
    if is_queue_name(value):
        return str(value)
    if not isinstance(value, str):
        why = f"it is {type(value).__name__}, not a string"
    elif not value:
        why = "it is empty"
    elif len(value) > 100:
        why = f"it is {len(value)} characters long"
    else:
        bad = sorted({c for c in value if not QUEUE_NAME.fullmatch(c)})
        why = f"it holds {' '.join(repr(c) for c in bad)}"
    raise ConfigError(
        f"{_at(where)}queue name {value!r} must be {QUEUE_NAME_RULE}; it is not a queue name because {why}"
    )


def priority(value: Any, where: str = "") -> int | None:
    """``value`` if it is None (the default place) or an integer 0 to 9 (lower runs sooner).

    Raises:
        ConfigError: anything else.
    """
    if value is None or (_is_int(value) and PRIORITY_MIN <= value <= PRIORITY_MAX):
        return value  # type: ignore[no-any-return]
    raise ConfigError(
        f"{_at(where)}priority must be an integer {PRIORITY_MIN} to {PRIORITY_MAX} (lower runs sooner), got {value!r}"
    )


def countdown(value: Any, where: str = "") -> float:
    """``value``, seconds to wait (None counts as 0).

    Raises:
        ConfigError: not a finite number from 0 to ``MAX_DELAY_S``.
    """
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_DELAY_S:
        raise ConfigError(
            f"{_at(where)}countdown must be seconds >= 0 and at most {MAX_DELAY_S} (10 years), got {value!r}; "
            "pass a finite number of seconds"
        )
    return value


def eta(value: Any, where: str = "") -> float | None:
    """``value`` (a datetime; naive means UTC) as a unix time, or None when not given.

    Raises:
        ConfigError: not a datetime.
    """
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ConfigError(f"{_at(where)}eta must be a datetime, got {value!r}")
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def run_at(count: Any, when: Any, now: float, where: str = "") -> float:
    """When a job may run, from a ``countdown`` or an ``eta`` (at most one): a unix time, or 0 for now.

    Raises:
        ConfigError: both given, or either is invalid.
    """
    if count is not None and when is not None:
        raise ConfigError(f"{_at(where)}give countdown or eta, not both")
    seconds = countdown(count, where)
    if seconds > 0:
        return now + seconds
    at = eta(when, where)
    if at is not None and at > now + MAX_DELAY_S:
        raise ConfigError(
            f"{_at(where)}eta must be at most {MAX_DELAY_S} seconds (10 years) ahead, got {when!r}; "
            "pass a nearer datetime"
        )
    return at if at is not None and at > now else 0.0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _at(where: str) -> str:
    return f"{where}: " if where else ""
