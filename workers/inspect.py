"""Asking live workers: ``taskrail inspect`` and ``taskrail control``, for the CLI and the HTTP API.

Each request is an RQ command published on every addressed worker's channel (``rq:pubsub:<name>``,
so ``rq.command`` could send the same) with a fresh reply list; the asker waits on that list until
every worker answered or the timeout passed. A worker that did not answer in time is listed under
``not_answering``, never silently left out. Revoking needs no worker: it is one script on the server
(tasks/core/handles.py), and the worker running a job terminated that way stops it within a second.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from rq.command import PUBSUB_CHANNEL_TEMPLATE

from config.errors import ConfigError
from tasks.core import keys
from tasks.core.client import Client
from tasks.core.handles import revoke_jobs
from tasks.core.options import parse_rate_limit
from workers.census import live_workers
from workers.control import INSPECT

__all__ = ["Answers", "ask", "inspect_workers", "rate_limit", "revoke", "shutdown", "targets"]

MAX_TIMEOUT_S = 60.0


@dataclass
class Answers:
    """What the addressed workers answered (worker -> data), which refused (worker -> error), which were silent."""

    request: str
    answers: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    not_answering: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "answers": self.answers, "errors": self.errors,
                "not_answering": self.not_answering}  # fmt: skip


def targets(conn: redis.Redis, worker: str | None = None) -> list[str]:
    """The live workers' names, or ``[worker]`` when it is one of them.

    Raises:
        ConfigError: ``worker`` is not a live worker (the message lists the live ones).
    """
    names = sorted(info.name for info in live_workers(conn))
    if worker is None:
        return names
    if worker not in names:
        raise ConfigError(f"no live worker named {worker!r}; live workers: {', '.join(names) or 'none'}")
    return [worker]


def check_timeout(timeout_s: Any) -> float:
    """``timeout_s`` if it is a number of seconds above 0 and at most 60, else a ConfigError saying so."""
    ok = isinstance(timeout_s, int | float) and not isinstance(timeout_s, bool) and math.isfinite(timeout_s)
    if not ok or not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ConfigError(
            f"--timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, got {timeout_s!r}"
        )
    return float(timeout_s)


def ask(conn: redis.Redis, workers: list[str], payload: dict[str, Any], timeout_s: float, request: str) -> Answers:
    """Publish ``payload`` to each worker and collect the answers until all came or ``timeout_s`` passed."""
    deadline = time.monotonic() + check_timeout(timeout_s)
    reply_to = keys.CONTROL_REPLY.format(uuid.uuid4().hex)
    body = json.dumps({**payload, "reply_to": reply_to})
    with conn.pipeline(transaction=False) as pipe:
        for name in workers:
            pipe.publish(PUBSUB_CHANNEL_TEMPLATE % name, body)
        listening = pipe.execute()
    result = Answers(request)
    waiting = {name for name, count in zip(workers, listening, strict=True) if count}  # 0: nobody subscribed
    while waiting:
        left = deadline - time.monotonic()
        popped = conn.blpop([reply_to], timeout=left) if left > 0.001 else None
        if popped is None:
            break
        answer = json.loads(popped[1])
        name = str(answer.get("worker"))
        if name not in waiting:
            continue
        waiting.discard(name)
        if answer.get("ok"):
            result.answers[name] = answer.get("data")
        else:
            result.errors[name] = str(answer.get("error"))
    conn.delete(reply_to)
    result.not_answering = sorted(set(workers) - set(result.answers) - set(result.errors))
    return result


def inspect_workers(conn: redis.Redis, what: str, worker: str | None = None, timeout_s: float = 1.0) -> Answers:
    """``taskrail inspect WHAT``: each live worker's (or one worker's) answer.

    Raises:
        ConfigError: an unknown ``what``, worker or a bad timeout.
    """
    if what not in INSPECT:
        raise ConfigError(f"inspect {what!r} is not known; use one of {', '.join(INSPECT)}")
    return ask(conn, targets(conn, worker), {"command": "taskrail-inspect", "what": what}, timeout_s, what)


def rate_limit(conn: redis.Redis, task: str, rate: str, worker: str | None = None, timeout_s: float = 1.0) -> Answers:
    """Celery's ``control.rate_limit``: every live worker (or one) starts ``task`` at most ``rate``
    (``"0"``: no limit) from its next claim, until it restarts.

    Raises:
        ConfigError: a bad rate, worker or timeout (an unknown task is each worker's error answer).
    """
    if rate not in ("0", ""):
        parse_rate_limit(rate)  # refused here, before any worker is asked
    payload = {"command": "taskrail-control", "action": "rate_limit", "task": task, "rate": rate}
    return ask(conn, targets(conn, worker), payload, timeout_s, "rate_limit")


def shutdown(conn: redis.Redis, worker: str | None = None, timeout_s: float = 1.0) -> Answers:
    """RQ's ``shutdown`` command to every live worker (or one): each finishes its running jobs and exits."""
    return ask(conn, targets(conn, worker), {"command": "shutdown"}, timeout_s, "shutdown")


def revoke(client: Client, ids: list[str], terminate: bool = False) -> dict[str, str]:
    """Celery's ``control.revoke(ids, terminate=)``: waiting jobs are canceled; running ones are stopped
    with ``terminate``, and otherwise left to finish. Returns what happened to each id."""
    if not ids:
        raise ConfigError("revoke needs at least one job id")
    running: set[str] = set()
    if not terminate:
        with client.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(keys.JOB.format(job_id), "status")
            running = {job_id for job_id, status in zip(ids, pipe.execute(), strict=True) if status == b"started"}
    revoked = [job_id for job_id in ids if job_id not in running]
    outcomes = dict(zip(revoked, revoke_jobs(client, revoked), strict=True)) if revoked else {}
    return {job_id: outcomes.get(job_id, "running (left to finish; --terminate stops it)") for job_id in ids}
