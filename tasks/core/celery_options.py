"""Celery's task options that taskrail takes with a documented mapping, and the "did you mean" for the rest.

``@task`` takes every option of Celery 5's ``@app.task``. Those with a taskrail field of the same name and
meaning live in ``TaskOptions``; the ones here are accepted and checked, and either change nothing because
taskrail already behaves that way, or are refused with the reason when a value asks for what taskrail does
not do (a pickle serializer, another result backend). docs/migrating-from-celery.md lists each.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from config.errors import ConfigError

__all__ = ["ACCEPTED", "APPLY_CELERY", "absorb", "unknown_option"]


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _anything(value: Any) -> bool:
    return True


# option -> (value check, what it means in taskrail)
ACCEPTED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "acks_late": (_flag, "taskrail always hands a dead worker's jobs back to their queues (as acks_late=True)"),
    "acks_on_failure_or_timeout": (_flag, "a failed or timed-out job is always settled, never redelivered"),
    # Read by the worker (workers/isolation.py): True puts the job of a work-horse that died back in its queue
    # (at most max_stalled times) where it would fail with WorkerLostError.
    "reject_on_worker_lost": (_flag, "True: a job whose work-horse died is requeued, not failed"),
    "track_started": (_flag, "STARTED is always recorded"),
    "store_errors_even_if_ignored": (_flag, "errors are always stored"),
    "send_events": (_flag, "events are always written to the per-queue stream"),
    "trail": (_flag, "no effect"),
    "resultrepr_maxsize": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "no effect"),
    "shared": (_flag, "tasks are always shared by every part of the process"),
    "lazy": (_flag, "registration is always immediate"),
    "abstract": (_flag, "no effect"),
    "store_eager_result": (_flag, "an eager result is always kept in the result object"),
    "exchange": (_anything, "no effect: Redis routes by queue name only"),
    "routing_key": (_anything, "no effect: Redis routes by queue name only"),
    "serializer": (lambda v: v in (None, "json"), "taskrail stores JSON only: serializer='json' or leave it out"),
    "compression": (lambda v: v is None, "taskrail does not compress job data: leave compression out"),
    "backend": (lambda v: v is None, "results live in the job's Redis server: leave backend out"),
    "pydantic": (lambda v: v is False, "pydantic validation is not offered: leave pydantic out"),
}

# Celery's apply_async options, for the "did you mean" of a misspelt per-call option.
APPLY_CELERY = (
    "args", "kwargs", "countdown", "eta", "expires", "retry", "retry_policy", "queue", "priority", "link",
    "link_error", "headers", "ignore_result", "time_limit", "soft_time_limit", "task_id", "shadow",
    "exchange", "routing_key", "serializer", "compression",
)  # fmt: skip

# Taskrail's names for Celery ideas a migrating team may reach for.
_SYNONYMS = {"retries": "max_retries", "timeout": "time_limit", "job_timeout": "time_limit", "ttl": "expires"}


def absorb(where: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Take the accepted Celery options out of ``raw``, checked; return them (kept on ``TaskOptions.extra``).

    Raises:
        ConfigError: a value that asks for what taskrail does not do, naming the option and the fix.
    """
    taken: dict[str, Any] = {}
    for name in [n for n in raw if n in ACCEPTED]:
        value = raw.pop(name)
        check, meaning = ACCEPTED[name]
        if not check(value):
            hint = meaning if "leave" in meaning or "serializer" in meaning else f"pass a valid value ({meaning})"
            raise ConfigError(f"{where}: {name}={value!r} is not supported; {hint}")
        taken[name] = value
    return taken


def unknown_option(where: str, name: str, known: Iterable[str]) -> ConfigError:
    """The error for an option nobody knows, naming the closest Celery or taskrail option."""
    names = sorted(set(known))
    guess = _SYNONYMS.get(name) or next(iter(difflib.get_close_matches(name, names, n=1, cutoff=0.6)), None)
    hint = f"did you mean {guess!r}? " if guess else ""
    return ConfigError(f"{where}: unknown option {name!r}; {hint}known: {', '.join(names)}")
