"""Celery's per-call ``apply_async`` options, and ``send_task`` / ``signature`` by name.

Options a worker must know about (``expires``, ``link``, ``link_error``, ``headers``, ``ignore_result``,
``soft_time_limit``, ``shadow``) travel in the job's ``tr_flow`` JSON object under the key ``"celery"``,
which CLAIM already hands to the worker: a job called without them has no such field and costs nothing.
``task_id`` is taskrail's ``job_id``, ``time_limit`` the job's hard ``timeout``; ``retry``/``retry_policy``
retry the enqueue itself when the server cannot be reached (nothing to do with the task's own retries).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis

from config.errors import ConfigError, ConnectionFailed
from tasks.core import validate
from tasks.core.protocol import new_job_id

if TYPE_CHECKING:
    from tasks.core.options import TaskOptions

__all__ = ["WORKER_OPTIONS", "call_fields", "pop_celery_options", "publish", "sig_to_dict"]

WORKER_OPTIONS = ("expires", "link", "link_error", "headers", "ignore_result", "soft_time_limit", "shadow")
PRODUCER_OPTIONS = ("retry", "retry_policy", "time_limit", "task_id", "exchange", "routing_key", "serializer")
CALLS_MAX_BYTES = 60_000  # CLAIM refuses a tr_flow over 64 KiB
# Celery's default publish retry policy.
RETRY_POLICY = {"max_retries": 3, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.2}


def pop_celery_options(options: dict[str, Any]) -> dict[str, Any]:
    """Take Celery's per-call options out of ``options`` (``task_id`` becomes ``job_id``)."""
    if "task_id" in options:
        task_id = options.pop("task_id")
        if task_id is not None:
            options["job_id"] = task_id
    return {name: options.pop(name) for name in (*WORKER_OPTIONS, *PRODUCER_OPTIONS) if name in options}


def call_fields(where: str, celery: Mapping[str, Any], opts: TaskOptions, now: float) -> dict[str, str]:
    """The job fields for the options the worker reads (``{}`` when none applies).

    Raises:
        ConfigError: a bad value, naming the option and what would be right.
    """
    found: dict[str, Any] = {}
    expires = celery.get("expires", opts.expires)
    if expires is not None:
        found["expires"] = _expires_at(where, expires, now)
    for name in ("link", "link_error"):
        if celery.get(name):
            found[name] = [sig_to_dict(where, name, sig) for sig in _listed(celery[name])]
    if celery.get("headers"):
        if not isinstance(celery["headers"], dict):
            raise ConfigError(f"{where}: headers must be a dict of JSON values, got {celery['headers']!r}")
        found["headers"] = celery["headers"]
    if celery.get("ignore_result"):
        found["ignore_result"] = True
    soft = celery.get("soft_time_limit")
    if soft is not None:
        if isinstance(soft, bool) or not isinstance(soft, int | float) or not 0 < soft <= validate.MAX_DELAY_S:
            raise ConfigError(f"{where}: soft_time_limit must be a positive number of seconds, got {soft!r}")
        found["soft"] = soft
    if celery.get("shadow"):
        found["shadow"] = str(celery["shadow"])
    if not found:
        return {}
    try:
        text = json.dumps({"celery": found}, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: link, link_error and headers must be JSON ({exc})") from exc
    if len(text) > CALLS_MAX_BYTES:
        raise ConfigError(f"{where}: link, link_error and headers encode to {len(text)} bytes, over {CALLS_MAX_BYTES}")
    return {"tr_flow": text}


def sig_to_dict(where: str, option: str, sig: Any) -> dict[str, Any]:
    """A signature as the worker stores it: task name, args, kwargs, options, immutable."""
    name = getattr(getattr(sig, "task", None), "name", None)
    if name is None:
        raise ConfigError(f"{where}: {option} takes signatures like on_done.s() (or a list of them), got {sig!r}")
    # The callback's job id is fixed now, so the parent's result lists it (AsyncResult.children).
    options = {"job_id": new_job_id(), **{k: v for k, v in sig.options.items() if v is not None}}
    return {"task": name, "args": list(sig.args), "kwargs": dict(sig.kwargs), "options": options,
            "immutable": sig.immutable}  # fmt: skip


def publish(enqueue: Callable[[], str], celery: Mapping[str, Any], where: str) -> str:
    """Run ``enqueue``; with ``retry=True`` or a ``retry_policy``, retry it while the server is unreachable."""
    policy = celery.get("retry_policy")
    if not celery.get("retry") and policy is None:
        return enqueue()
    if celery.get("retry") is False:
        return enqueue()
    merged = {**RETRY_POLICY, **(policy or {})}
    unknown = set(merged) - set(RETRY_POLICY)
    if unknown:
        raise ConfigError(f"{where}: retry_policy takes {', '.join(RETRY_POLICY)}; not {sorted(unknown)[0]!r}")
    attempt = 0
    while True:
        try:
            return enqueue()
        except (redis.ConnectionError, redis.TimeoutError, ConnectionFailed):
            if merged["max_retries"] is not None and attempt >= merged["max_retries"]:
                raise
            delay = merged["interval_start"] + attempt * merged["interval_step"]
            time.sleep(min(delay, merged["interval_max"]))  # Celery's publish retry schedule
            attempt += 1


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _expires_at(where: str, expires: Any, now: float) -> float:
    if isinstance(expires, datetime):
        return validate.eta(expires, f"{where}: expires") or now
    return now + validate.countdown(expires, f"{where}: expires")
