"""The producer's connection: writes jobs in one scripted round trip each (or one per batch)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import redis
from redis.client import Pipeline

from config.connection import connect
from config.settings import Settings, load_settings
from tasks.core import keys
from tasks.core.protocol import JobSpec
from tasks.core.scripting import load_command, run_pipeline
from tasks.core.wire import LineBusy, command, encoded, line_of

if TYPE_CHECKING:
    from tasks.core.prepacked import Prepacked
    from tasks.core.task import Task

__all__ = ["Client", "default_client"]

PER_JOB_FIELDS = ("data", "description")


class Client:
    """Settings plus a connection, with the enqueue scripts at hand."""

    def __init__(self, settings: Settings, connection: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = connection if connection is not None else connect(settings)
        self.enqueue_script = self._enqueue = load_command("enqueue")  # tasks/core/lua/enqueue.lua
        self._enqueue_many = load_command("enqueue_many")
        self.prepacked: dict[Task[Any, Any], Prepacked] = {}  # a task's plain calls, packed (tasks/core/prepacked.py)

    def _script_args(self, spec: JobSpec) -> tuple[list[str], list[Any]]:
        q = spec.queue
        unique = keys.UNIQUE.format(spec.unique_key) if spec.unique_key else ""
        keys_ = [
            keys.JOB.format(spec.job_id),
            keys.QUEUE.format(q),
            keys.QUEUES,
            keys.SCHEDULED.format(q),
            keys.WAKE.format(q),
            keys.EVENTS.format(q),
            unique,
            keys.LEVELS.format(q),
        ]
        flat: list[Any] = []
        for field, value in spec.fields.items():
            flat += [field, value]
        argv = [
            spec.job_id,
            spec.run_at,
            self.settings.events_maxlen,
            spec.unique_ttl_s,
            spec.unique_mode,
            spec.fields["tr_task"],
            *flat,
        ]
        return keys_, argv

    def enqueue(self, spec: JobSpec) -> str:
        """Write one job; returns its id (or the id of the live job holding the same unique key)."""
        keys_, argv = self._script_args(spec)
        packed = command(encoded(self.redis, ["EVALSHA", self._enqueue.sha, len(keys_), *keys_, *argv]))
        return self._send(packed, lambda: (keys_, argv))

    def send_enqueue(self, packed: bytes, spec: Callable[[], JobSpec]) -> str:
        """Send an enqueue command packed in advance (tasks/core/prepacked.py); ``spec`` is the same call,
        for when it goes through redis-py instead."""
        return self._send(packed, lambda: self._script_args(spec()))

    def _send(self, packed: bytes, script_args: Callable[[], tuple[list[str], list[Any]]]) -> str:
        """One enqueue command on the held connection (tasks/core/wire.py); through redis-py, with its retry
        policy, when that is busy or failed, or the server lacks the script (a resent call finds its job)."""
        try:
            result = line_of(self.redis).call(packed)
        except (LineBusy, redis.ConnectionError, redis.TimeoutError, redis.exceptions.NoScriptError):
            result = self._enqueue(self.redis, *script_args())
        return _text(result)

    def enqueue_in(self, pipe: redis.client.Pipeline, spec: JobSpec) -> None:
        """Queue the write of one job on ``pipe``, e.g. inside a transaction with other writes."""
        keys_, argv = self._script_args(spec)
        self._enqueue.ensure_loaded(self.redis)
        self._enqueue.queue(pipe, keys_, argv)

    def enqueue_many(self, specs: Iterable[JobSpec], chunk: int = 1000) -> list[str]:
        """Write many jobs in pipelined round trips of ``chunk`` jobs; returns their ids in order."""
        ids: list[str] = []
        batch: list[JobSpec] = []
        for spec in specs:
            batch.append(spec)
            if len(batch) >= chunk:
                ids += self._flush(batch)
                batch = []
        if batch:
            ids += self._flush(batch)
        return ids

    def _flush(self, batch: Sequence[JobSpec]) -> list[str]:
        """One pipelined round trip: plain jobs go in bulk calls, the rest one script call each."""
        plain = [spec for spec in batch if is_plain(spec)]
        others = [spec for spec in batch if not is_plain(spec)]

        def build(pipe: Pipeline) -> None:
            for group in _groups(plain):
                self._enqueue_many.queue(pipe, *self._bulk_args(group))
            for spec in others:
                self._enqueue.queue(pipe, *self._script_args(spec))

        results = run_pipeline(self.redis, build)
        # Plain jobs keep their own ids; the others may resolve to an existing unique job.
        resolved = {
            spec.job_id: _text(r) for spec, r in zip(others, results[len(results) - len(others) :], strict=True)
        }
        return [resolved.get(spec.job_id, spec.job_id) for spec in batch]

    def _bulk_args(self, group: Sequence[JobSpec]) -> tuple[list[str], list[Any]]:
        first = group[0]
        shared: list[Any] = []
        for field, value in first.fields.items():
            if field not in PER_JOB_FIELDS:
                shared += [field, value]
        argv: list[Any] = [self.settings.events_maxlen, first.fields["tr_task"], len(shared), *shared]
        for spec in group:
            argv += [spec.job_id, spec.fields["data"], spec.fields["description"]]
        q = first.queue
        keys_ = [
            keys.QUEUE.format(q),
            keys.QUEUES,
            keys.WAKE.format(q),
            keys.EVENTS.format(q),
        ]
        return keys_, argv

    def now(self) -> float:
        """Wall-clock seconds, the clock jobs are scheduled on."""
        return time.time()


def is_plain(spec: JobSpec) -> bool:
    """A job the bulk script can write: no delay, no unique key, no per-call limit key (any priority)."""
    return not spec.unique_key and not spec.run_at and "tr_limit_key" not in spec.fields


def _groups(specs: Sequence[JobSpec]) -> list[list[JobSpec]]:
    """Consecutive runs of specs whose shared fields are equal (same task, queue and options)."""
    groups: list[list[JobSpec]] = []
    for spec in specs:
        if groups and _shared(groups[-1][0]) == _shared(spec):
            groups[-1].append(spec)
        else:
            groups.append([spec])
    return groups


def _shared(spec: JobSpec) -> tuple[Any, ...]:
    """What decides a job's shared fields: its task, queue and options (timestamps may differ by
    microseconds within a batch; the batch takes its first job's)."""
    f = spec.fields
    return (spec.queue, f["tr_task"], f["timeout"], f["result_ttl"], f["failure_ttl"], f.get("tr_flow"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@functools.cache
def default_client() -> Client:
    """The process-wide producer client, built from the environment on first use."""
    return Client(load_settings())
