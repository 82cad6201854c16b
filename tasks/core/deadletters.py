"""Dead letters: failed jobs kept with their arguments, exception and traceback, to inspect, requeue or purge.

A job lands in RQ's failed registry ``rq:failed:<queue>`` when its retries are exhausted, when it
stalled more than ``max_stalled`` times, or on an error its task does not retry. The registry score
is the moment it expires (``failure_ttl_s`` after the failure); the job hash expires with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tasks.core import keys, validate
from tasks.core.client import Client, default_client
from tasks.core.protocol import DATA_ERRORS, RESULT_FAILED, decode_data, entry_traceback, utcnow_text
from tasks.core.scripting import load_command

__all__ = ["DeadLetter", "DeadLetters"]


@dataclass(frozen=True)
class DeadLetter:
    """One failed job as it was when it failed."""

    id: str
    queue: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    exc_type: str
    message: str
    traceback: str
    attempts: int
    retries: int
    stalls: int
    failed_at: str  # RQ's timestamp text, UTC
    expires_at: float  # unix time the job is dropped (failure_ttl_s after the failure)
    data_error: str = ""  # why args and kwargs could not be read (damaged or over-deep data), else ""


class DeadLetters:
    """Inspect, requeue and purge failed jobs, per queue or everywhere."""

    def __init__(self, client: Client | None = None) -> None:
        if client is None:
            client = default_client()
        self.client = client
        self.redis = client.redis
        self._requeue = load_command("requeue_dead")  # tasks/core/lua/requeue_dead.lua

    def queues(self) -> list[str]:
        """Names of the queues that hold failed jobs."""
        found = {
            keys.key_part(keys.FAILED, key.decode()) for key in self.redis.scan_iter(keys.FAILED.format("*"), count=500)
        }
        return sorted(q for q in found if self.count(q))

    def count(self, queue: str | None = None) -> int:
        """How many live failed jobs ``queue`` (or every queue) holds."""
        if queue is None:
            return sum(self.count(q) for q in self.queues())
        return int(self.redis.zcount(keys.FAILED.format(validate.queue_name(queue)), f"({time.time()}", "+inf"))

    def jobs(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """The most recent failed jobs of ``queue`` (or of every queue), newest first."""
        found: list[DeadLetter] = []
        for name in self._names(queue):
            self._drop_expired(name)
            ids = self.redis.zrevrange(keys.FAILED.format(name), 0, limit - 1, withscores=True)
            for raw_id, expires_at in ids:
                letter = self._load(raw_id.decode(), name, expires_at)
                if letter is not None:
                    found.append(letter)
        found.sort(key=lambda letter: letter.failed_at, reverse=True)
        return found[:limit]

    def get(self, job_id: str) -> DeadLetter | None:
        """The failed job ``job_id``, or None if it is not (or no longer) a dead letter."""
        origin = self.redis.hget(keys.JOB.format(job_id), "origin")
        if origin is None:
            return None
        queue = origin.decode()
        expires_at = self.redis.zscore(keys.FAILED.format(queue), job_id)
        return None if expires_at is None else self._load(job_id, queue, expires_at)

    def requeue(self, job_id: str) -> bool:
        """Put one failed job back on its queue; False if it is not a dead letter (any more)."""
        origin = self.redis.hget(keys.JOB.format(job_id), "origin")
        if origin is None:
            return False
        q = origin.decode()
        keys_ = [keys.FAILED.format(q), keys.JOB.format(job_id), keys.QUEUE.format(q), keys.QUEUES,
                 keys.WAKE.format(q), keys.EVENTS.format(q), keys.RESULTS.format(job_id), keys.DONE.format(job_id)]  # fmt: skip
        args = [job_id, utcnow_text(), self.client.settings.events_maxlen]
        return bool(self._requeue(self.redis, keys_, args))

    def requeue_all(self, queue: str | None = None) -> int:
        """Requeue every failed job of ``queue`` (or of every queue); returns how many went back."""
        moved = 0
        for name in self._names(queue):
            self._drop_expired(name)
            for raw_id in self.redis.zrange(keys.FAILED.format(name), 0, -1):
                moved += self.requeue(raw_id.decode())
        return moved

    def purge(self, queue: str | None = None) -> int:
        """Delete every failed job of ``queue`` (or of every queue) with its results; returns how many."""
        purged = 0
        for name in self._names(queue):
            registry = keys.FAILED.format(name)
            ids = [raw.decode() for raw in self.redis.zrange(registry, 0, -1)]
            if not ids:
                continue
            with self.redis.pipeline(transaction=True) as pipe:
                for job_id in ids:
                    pipe.delete(keys.JOB.format(job_id), keys.RESULTS.format(job_id), keys.DONE.format(job_id))
                pipe.zrem(registry, *ids)
                pipe.execute()
            purged += len(ids)
        return purged

    def _names(self, queue: str | None) -> list[str]:
        """``queue`` (checked: it goes into key names) or, when not given, every queue with failed jobs."""
        return [validate.queue_name(queue)] if queue else self.queues()

    def _drop_expired(self, queue: str) -> None:
        self.redis.zremrangebyscore(keys.FAILED.format(queue), "-inf", time.time())

    def _load(self, job_id: str, queue: str, expires_at: float) -> DeadLetter | None:
        fields: dict[bytes, bytes] = self.redis.hgetall(keys.JOB.format(job_id))
        if not fields:
            return None

        def get(name: str) -> str:
            return fields.get(name.encode(), b"").decode(errors="replace")

        data_error = ""
        try:
            task, args, kwargs = decode_data(fields.get(b"data", b"[]"))
        except DATA_ERRORS as exc:  # one damaged job must not hide the others
            task, args, kwargs = get("tr_task"), [], {}
            data_error = f"cannot decode: {exc}"
        return DeadLetter(
            id=job_id,
            queue=queue,
            task=get("tr_task") or task,
            args=args,
            kwargs=kwargs,
            exc_type=get("tr_exc_type"),
            message=get("tr_exc_message"),
            traceback=self._traceback(job_id),
            attempts=_int(get("tr_attempts")),
            retries=_int(get("tr_retries")),
            stalls=_int(get("tr_stalls")),
            failed_at=get("ended_at"),
            expires_at=float(expires_at),
            data_error=data_error,
        )

    def _traceback(self, job_id: str) -> str:
        for _entry_id, entry in self.redis.xrevrange(keys.RESULTS.format(job_id), count=10):
            if entry.get(b"type") == RESULT_FAILED and entry.get(b"exc_string"):
                return entry_traceback(entry)
        return ""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
