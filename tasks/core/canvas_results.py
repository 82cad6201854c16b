"""Many results handled as one: ``ResultSet`` (Celery's), and the pipelined reader it and the worker use to
read many jobs' outcomes in one round trip (``read_outcomes``). ``GroupResult`` and ``FlowResult`` build on
it in tasks/core/groups.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from config.errors import ResultTimeout, TaskFailed, TaskRevoked
from tasks.core import keys
from tasks.core.client import Client
from tasks.core.handles import ClientBound, revoke_jobs
from tasks.core.protocol import entry_return_value, entry_traceback
from tasks.core.remote_errors import rebuild

if TYPE_CHECKING:
    from tasks.core.result import AsyncResult

__all__ = ["FINAL", "MemberOutcome", "ResultSet", "read_outcomes"]

READ_CHUNK = 10_000  # members read per pipelined round trip
FINAL = frozenset({"finished", "failed", "canceled", "stopped"})


@dataclass(frozen=True)
class MemberOutcome:
    """What one flow member ended as: its RQ status, its value, or the error it failed with."""

    job_id: str
    status: str
    task: str
    value: Any = None
    error: TaskFailed | None = None

    @property
    def ready(self) -> bool:
        return self.status in FINAL

    @property
    def ok(self) -> bool:
        return self.status == "finished"


def read_outcomes(conn: redis.Redis, ids: Sequence[str], tracebacks: bool = True) -> list[MemberOutcome]:
    """Each job's status and latest result, in the order of ``ids``, READ_CHUNK jobs per round trip."""
    out: list[MemberOutcome] = []
    for start in range(0, len(ids), READ_CHUNK):
        part = ids[start : start + READ_CHUNK]
        with conn.pipeline(transaction=False) as pipe:
            for job_id in part:
                pipe.hmget(keys.JOB.format(job_id), "status", "tr_task", "tr_exc_type", "tr_exc_message")
                pipe.xrevrange(keys.RESULTS.format(job_id), count=1)
            replies = pipe.execute()
        for index, job_id in enumerate(part):
            fields, entries = replies[2 * index], replies[2 * index + 1]
            out.append(_outcome(job_id, fields, entries[0][1] if entries else None, tracebacks))
    return out


def _outcome(job_id: str, fields: list[bytes | None], entry: dict[bytes, bytes] | None, tb: bool) -> MemberOutcome:
    status, task, exc_type, exc_message = (f.decode(errors="replace") if f is not None else "" for f in fields)
    if status == "finished":
        return MemberOutcome(job_id, status, task, entry_return_value(entry))
    if status == "failed":
        traceback = entry_traceback(entry) if tb else ""
        error = rebuild(job_id, exc_type or "Exception", exc_message, traceback)
        return MemberOutcome(job_id, status, task, error=error)
    if status in ("canceled", "stopped"):
        return MemberOutcome(job_id, status, task, error=TaskFailed(job_id, "TaskRevoked", "revoked", ""))
    return MemberOutcome(job_id, status, task)


class ResultSet(ClientBound):
    """Celery's ``ResultSet``: many results handled as one, in the order given: ``get()``/``join()``, counts,
    ``ready()``, ``successful()``, ``failed()``, ``waiting()``, ``revoke()``."""

    id: str = ""

    def __init__(self, results: Sequence[AsyncResult], client: Client | None = None) -> None:
        self.results = list(results)
        self._client = client

    def __repr__(self) -> str:
        return f"<ResultSet ({len(self.results)} results)>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult:
        return self.results[index]

    def add(self, result: AsyncResult) -> None:
        if result not in self.results:
            self.results.append(result)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.results]

    def outcomes(self) -> list[MemberOutcome]:
        """Every member's outcome so far, in one pipelined read."""
        return read_outcomes(self.client.redis, self.ids, tracebacks=False)

    def _statuses(self, ids: Sequence[str]) -> list[str]:
        with self.client.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(keys.JOB.format(job_id), "status")
            return [s.decode() if s else "" for s in pipe.execute()]

    def completed_count(self) -> int:
        """How many members finished successfully."""
        return sum(s == "finished" for s in self._statuses(self.ids))

    def failed_count(self) -> int:
        """How many members failed or were revoked."""
        return sum(s in FINAL and s != "finished" for s in self._statuses(self.ids))

    def ready(self) -> bool:
        return all(s in FINAL for s in self._statuses(self.ids))

    def successful(self) -> bool:
        return all(s == "finished" for s in self._statuses(self.ids))

    def failed(self) -> bool:
        """Whether any member failed or was revoked."""
        return self.failed_count() > 0

    def waiting(self) -> bool:
        """Whether any member has not ended yet."""
        return not self.ready()

    def revoke(self) -> list[str]:
        """Cancel members that wait, stop those that run; whatever waits on them is canceled too."""
        return revoke_jobs(self.client, self.ids)

    def get(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Wait for every member; their values in input order (errors in their slots without ``propagate``).

        Raises:
            ResultTimeout: not all ready within ``timeout`` seconds.
            TaskFailed, TaskRevoked: the first member (in input order) that failed, with ``propagate``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting = self.ids
        while waiting:
            statuses = self._statuses(waiting)
            waiting = [job_id for job_id, s in zip(waiting, statuses, strict=True) if s not in FINAL]
            if not waiting:
                break
            left = 2.0 if deadline is None else min(2.0, deadline - time.monotonic())
            if left <= 0:
                raise ResultTimeout(f"{self!r}: {len(waiting)} of {len(self.ids)} results not ready after {timeout}s")
            self._block_on(waiting[-1], left)  # members mostly end in order: wait for the last
        values: list[Any] = []
        for outcome in read_outcomes(self.client.redis, self.ids):
            if outcome.ok:
                values.append(outcome.value)
                continue
            revoked = outcome.status in ("canceled", "stopped")
            error: Exception = TaskRevoked(f"task {outcome.job_id} was revoked") if revoked else outcome.error  # type: ignore[assignment]
            if propagate:
                raise error
            values.append(error)
        return values

    def join(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Celery's ``join``: the same as ``get``."""
        return self.get(timeout=timeout, propagate=propagate)

    def _block_on(self, job_id: str, seconds: float) -> None:
        """Wait on one member's done signal (set by its settle when someone waits)."""
        conn = self.client.redis
        conn.set(keys.WAITERS.format(job_id), 1, ex=int(seconds) + 60)
        if self._statuses([job_id])[0] not in FINAL:
            done = keys.DONE.format(job_id)
            conn.blmove(done, done, max(seconds, 0.01), "LEFT", "RIGHT")
