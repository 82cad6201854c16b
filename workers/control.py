"""A worker's answers to ``taskrail inspect`` and ``taskrail control``, from what it holds in memory.

Requests arrive as RQ commands on the worker's channel ``rq:pubsub:<name>`` (``rq.command.send_command``
sends them; RQ's own worker ignores commands it does not know), read by RQ's pub/sub thread, so a
worker answers while its slots run long jobs:

- ``{"command": "taskrail-inspect", "what": "active", "reply_to": KEY}``: ``active``, ``reserved``,
  ``scheduled``, ``registered``, ``stats`` or ``ping``;
- ``{"command": "taskrail-control", "action": "rate_limit", "task": NAME, "rate": "10/s", "reply_to": KEY}``;
- RQ's own ``shutdown`` (and the others of workers/commands.py) with a ``reply_to``.

The answer is one JSON object ``{"worker", "ok", "data" | "error"}`` pushed on the list ``reply_to``
(expiring after a minute), where the asker (workers/inspect.py) waits for it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any, Protocol

import redis

from config.errors import ConfigError
from tasks.core import keys
from tasks.core.options import parse_rate_limit
from tasks.core.protocol import decode_data
from tasks.core.registry import all_tasks
from workers.interrupts import Slot

__all__ = ["CONTROL", "INSPECT", "InspectedWorker", "inspect", "reply", "set_rate_limit"]

log = logging.getLogger("taskrail.control")

INSPECT = ("active", "reserved", "scheduled", "registered", "stats", "ping")
CONTROL = ("rate_limit", "revoke", "shutdown")
REPLY_TTL_S = 60
SCHEDULED_SHOWN = 100  # per queue: the soonest; the rest are counted
ARGS_SHOWN_BYTES = 2048  # a job's arguments are shown when its data is at most this long


class InspectedWorker(Protocol):
    """What inspect and control read of a worker (workers/worker.py's ``Worker``)."""

    name: str
    slots: list[Slot]
    queue_list: list[str]
    jobs_done: int
    rate_overrides: dict[str, str]
    started_at: float
    successful_job_count: int
    failed_job_count: int

    @property
    def connection(self) -> redis.Redis: ...
    @property
    def stopping(self) -> bool: ...


def inspect(worker: InspectedWorker, what: str) -> Any:
    """The answer to ``taskrail inspect WHAT``.

    Raises:
        ConfigError: ``what`` is not one of :data:`INSPECT`.
    """
    if what == "ping":
        return "pong"
    if what == "active":
        return [_job(slot.job, worker.name, slot.started_at) for slot in worker.slots if slot.job_id and slot.job]
    if what == "reserved":
        return [_job(job, worker.name) for slot in worker.slots for job in tuple(slot.reserved)]
    if what == "registered":
        tasks = all_tasks()
        overrides = worker.rate_overrides
        return [
            {"name": name, "rate_limit": _shown(overrides[name]) if name in overrides else _rate(tasks[name])}
            for name in sorted(tasks)
        ]
    if what == "scheduled":
        return _scheduled(worker.connection, worker.queue_list)
    if what == "stats":
        return _stats(worker)
    raise ConfigError(f"inspect {what!r} is not known; use one of {', '.join(INSPECT)}")


def set_rate_limit(worker: InspectedWorker, task: Any, rate: Any) -> dict[str, Any]:
    """Celery's ``rate_limit`` control: from the next claim this worker starts ``task`` at most ``rate``
    (``"0"`` or ``""``: without a limit). Held in memory: a restarted worker uses the task's own again.

    Raises:
        ConfigError: an unknown task or a bad rate.
    """
    if not isinstance(task, str) or task not in all_tasks():
        raise ConfigError(f"task {task!r} is not registered in this worker; check the name (inspect registered)")
    if rate in (None, "", "0"):
        _override(worker, task, "")
        return {"task": task, "rate_limit": None}
    count, period = parse_rate_limit(str(rate)).window()
    _override(worker, task, f"{count}/{period:g}")
    log.info("worker %s: rate limit of %s set to %s", worker.name, task, rate)
    return {"task": task, "rate_limit": str(rate)}


def _override(worker: InspectedWorker, task: str, rate: str) -> None:
    """Write the worker's runtime rate limits where its claims read them (claim.lua: a claim already sent,
    waiting behind the worker's blocking wait, applies them too), then keep them in memory for inspect."""
    overrides = {**worker.rate_overrides, task: rate}
    worker.connection.set(keys.RATE_OVERRIDES.format(worker.name), json.dumps(overrides))
    worker.rate_overrides[task] = rate


def reply(conn: redis.Redis, key: Any, worker: str, answer: Any = None, error: str | None = None) -> None:
    """Push one answer on ``key`` (the asker's list), kept a minute; a key not under taskrail's is ignored."""
    if not isinstance(key, str) or not key.startswith(keys.CONTROL_REPLY.format("")):
        log.warning("worker %s: a reply_to %r outside %s ignored", worker, key, keys.CONTROL_REPLY.format("*"))
        return
    body = {"worker": worker, "ok": error is None, "error": error} if error else {"worker": worker, "ok": True}
    if error is None:
        body["data"] = answer
    with conn.pipeline(transaction=False) as pipe:
        pipe.rpush(key, json.dumps(body, default=str))
        pipe.expire(key, REPLY_TTL_S)
        pipe.execute()


def _job(job: Any, worker: str, started_at: float | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"id": job.id, "queue": job.queue, "worker": worker, "attempts": job.attempts}
    if started_at is not None:
        found["started_at"] = started_at
    try:
        name, args, kwargs = decode_data(job.data)
    except Exception:  # a poison job: its id and queue are still worth showing
        return {**found, "task": None}
    found["task"] = name
    if len(job.data) <= ARGS_SHOWN_BYTES:
        found["args"], found["kwargs"] = args, kwargs
    return found


def _rate(task: Any) -> str | None:
    limit = task.options.rate_limit
    if limit is None:
        return None
    count, period = limit.window()
    return _shown(f"{count}/{period:g}")


def _shown(rate: str) -> str | None:
    """A tr_rate (``count/seconds``, ``""``: none) as shown: ``5/1s``."""
    return f"{rate}s" if rate else None


def _scheduled(conn: redis.Redis, queues: list[str]) -> list[dict[str, Any]]:
    """Delayed jobs (countdown, eta, retries with a delay) of this worker's queues, soonest first."""
    with conn.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zrange(keys.SCHEDULED.format(queue), 0, SCHEDULED_SHOWN - 1, withscores=True)
        replies = pipe.execute()
    found = []
    for queue, members in zip(queues, replies, strict=True):
        for job_id, eta in members:
            found.append({"id": job_id.decode(errors="replace"), "queue": queue, "eta": float(eta)})
    if found:
        with conn.pipeline(transaction=False) as pipe:
            for job in found:
                pipe.hget(keys.JOB.format(job["id"]), "tr_task")
            for job, task in zip(found, pipe.execute(), strict=True):
                job["task"] = task.decode(errors="replace") if task else None
    return sorted(found, key=lambda job: job["eta"])


def _stats(worker: InspectedWorker) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "queues": worker.queue_list,
        "concurrency": len(worker.slots),
        "busy_slots": sum(1 for slot in worker.slots if slot.job_id),
        "jobs_done": worker.jobs_done,
        "succeeded": worker.successful_job_count,
        "failed": worker.failed_job_count,
        "uptime_s": round(time.time() - worker.started_at, 3),
        "rate_limits": {task: _shown(rate) for task, rate in worker.rate_overrides.items()},
        "stopping": worker.stopping,
    }
