"""``AsyncResult``: the state, progress and outcome of one job, Celery style."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rq.job import _current_job

from config.errors import ResultTimeout, TaskFailed, TaskRevoked
from tasks.core import keys
from tasks.core.canvas_results import ResultSet
from tasks.core.client import Client
from tasks.core.handles import ClientBound, revoke_jobs
from tasks.core.protocol import DATA_ERRORS, decode_data, entry_return_value, entry_traceback
from tasks.core.remote_errors import rebuild
from tasks.core.states import custom_state

__all__ = ["STATES", "AsyncResult", "JobSnapshot"]

_UNREAD: Any = object()  # AsyncResult.parent not read yet
STATES = ("PENDING", "SCHEDULED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED")
READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
_RQ_TO_STATE = {
    "queued": "PENDING",
    "deferred": "PENDING",
    "created": "PENDING",
    "scheduled": "SCHEDULED",
    "started": "STARTED",
    "finished": "SUCCESS",
    "failed": "FAILURE",
    "canceled": "REVOKED",
    "stopped": "REVOKED",
}


@dataclass(frozen=True)
class JobSnapshot:
    """One read of a job's hash and its latest result entry."""

    fields: dict[bytes, bytes]
    result: dict[bytes, bytes] | None

    def get(self, name: str, default: str = "") -> str:
        value = self.fields.get(name.encode())
        return value.decode() if value is not None else default


class AsyncResult(ClientBound):
    """A handle on one job: ``state``, ``progress``, ``get(timeout=)``, ``revoke()``."""

    def __init__(self, job_id: str, client: Client | None = None) -> None:
        self.id = job_id
        self._client = client

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def snapshot(self) -> JobSnapshot:
        """Read the job hash and latest result in one round trip."""
        with self.client.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.JOB.format(self.id))
            pipe.xrevrange(keys.RESULTS.format(self.id), count=1)
            fields, results = pipe.execute()
        return JobSnapshot(fields, results[0][1] if results else None)

    @staticmethod
    def state_of(snap: JobSnapshot) -> str:
        """Celery state name for a snapshot."""
        status = snap.get("status")
        if not status:
            return "PENDING"
        custom = custom_state(status, snap.fields)
        if custom is not None:
            return custom[0]
        retrying = int(snap.get("tr_retries", "0") or 0) > 0
        if status in ("queued", "scheduled") and retrying:
            return "RETRY"
        return _RQ_TO_STATE.get(status, "PENDING")

    @property
    def state(self) -> str:
        return self.state_of(self.snapshot())

    @property
    def status(self) -> str:
        """The raw RQ status (``queued``, ``started``, ``finished``, ...), or ``""`` if no such job."""
        return self.snapshot().get("status")

    def ready(self) -> bool:
        return self.state in READY_STATES

    def successful(self) -> bool:
        return self.state == "SUCCESS"

    def failed(self) -> bool:
        return self.state == "FAILURE"

    @property
    def attempts(self) -> int:
        """How many times a worker has started this job."""
        return int(self.snapshot().get("tr_attempts", "0") or 0)

    @property
    def progress(self) -> dict[str, Any] | None:
        """``{"percent": float, "note": str | None}`` as last reported by a bound task, or None."""
        snap = self.snapshot()
        if not snap.get("tr_progress"):
            return None
        return {"percent": float(snap.get("tr_progress")), "note": snap.get("tr_progress_note") or None}

    @property
    def result(self) -> Any:
        """As Celery: the return value after success, the task's exception after failure (also a
        TaskFailed), the meta of a custom state (``update_state``) while it runs, else None."""
        snap = self.snapshot()
        state = self.state_of(snap)
        if state == "SUCCESS":
            return entry_return_value(snap.result)
        if state == "FAILURE":
            return self._failure(snap)
        custom = custom_state(snap.get("status"), snap.fields)
        return custom[1] if custom is not None else None

    info = result  # Celery's other name for it

    @property
    def traceback(self) -> str | None:
        snap = self.snapshot()
        return self._failure(snap).traceback if self.state_of(snap) == "FAILURE" else None

    def get(self, timeout: float | None = None, propagate: bool = True, disable_sync_subtasks: bool = True) -> Any:
        """Wait for the outcome; blocks on a server-side signal instead of polling.

        Inside a running task it raises RuntimeError, as Celery does (waiting there can deadlock a worker);
        ``disable_sync_subtasks=False`` allows it.

        Raises:
            RuntimeError: called inside a task without ``disable_sync_subtasks=False``.
            ResultTimeout: not ready within ``timeout`` seconds (a TimeoutError).
            TaskFailed: the task failed (with ``propagate``); carries the remote type and traceback.
            TaskRevoked: the task was revoked (with ``propagate``).
        """
        if disable_sync_subtasks and _current_job.get(None) is not None:
            raise RuntimeError(
                f"never call get() inside a task (waiting for {self.id} can deadlock the worker); chain the "
                "tasks instead, or pass disable_sync_subtasks=False if you are sure"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        redis_ = self.client.redis
        waiters, done = keys.WAITERS.format(self.id), keys.DONE.format(self.id)
        with redis_.pipeline(transaction=False) as pipe:
            pipe.set(waiters, 1, ex=int(timeout or 3600) + 60)
            pipe.execute()
        while True:
            snap = self.snapshot()
            state = self.state_of(snap)
            if state in READY_STATES:
                return self._outcome(snap, state, propagate)
            block = 2.0
            if deadline is not None:
                block = min(block, deadline - time.monotonic())
                if block <= 0:
                    raise ResultTimeout(f"task {self.id} not ready after {timeout}s (state {state})")
            # A blocking peek: the token stays for other waiters.
            redis_.blmove(done, done, max(block, 0.01), "LEFT", "RIGHT")

    # Celery's other fields, read from the job's hash.
    @property
    def name(self) -> str | None:
        """The task's registered name, or None if no such job."""
        return self.snapshot().get("tr_task") or None

    @property
    def args(self) -> list[Any] | None:
        return self._call()[0]

    @property
    def kwargs(self) -> dict[str, Any] | None:
        return self._call()[1]

    @property
    def worker(self) -> str | None:
        """The worker that ran (or runs) the job."""
        return self.snapshot().get("worker_name") or None

    @property
    def date_done(self) -> datetime | None:
        """When the job ended (UTC), or None while it has not."""
        text = self.snapshot().get("ended_at")
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None

    @property
    def children(self) -> list[AsyncResult]:
        """The results of the callbacks linked to this job (``link=``, ``sig.link()``), as Celery lists them;
        their ids are fixed when the job is sent, so a callback not sent yet (or never: the job failed) is
        listed too. Tasks a task sends itself are not recorded."""
        raw = self.client.redis.hget(keys.JOB.format(self.id), "tr_flow")
        links = (json.loads(raw).get("celery") or {}).get("link") or [] if raw else []
        return [AsyncResult(link["options"]["job_id"], self._client) for link in links if "job_id" in link["options"]]

    _parent: Any = _UNREAD

    @property
    def parent(self) -> Any:
        """The step before this one in a flow: an ``AsyncResult``, a ``ResultSet`` for a group (a chord's
        callback), or None. A handle from ``apply_async`` knows it; any other reads the job's parents once."""
        if self._parent is _UNREAD:
            raw = self.client.redis.hget(keys.JOB.format(self.id), "dependency_ids")
            ids: list[str] = json.loads(raw) if raw else []
            self._parent = _parent_of(ids, self._client)
        return self._parent

    @parent.setter
    def parent(self, value: Any) -> None:
        self._parent = value

    def _call(self) -> tuple[list[Any] | None, dict[str, Any] | None]:
        data = self.snapshot().fields.get(b"data")
        if not data:
            return None, None
        try:
            _, args, kwargs = decode_data(data)
        except DATA_ERRORS:
            return None, None
        return args, kwargs

    def revoke(self, terminate: bool = False, signal: str | None = None, **_celery: Any) -> str:
        """Cancel the job if it waits, or ask its worker to stop it if it runs (Celery's ``terminate=True``
        is what taskrail always does for a running job; ``signal`` is not used: the stop is raised in the task).

        Returns what happened: ``canceled``, ``stopping``, ``already <status>`` or ``missing``.
        """
        # One script for every job: it also cancels the flow steps that waited on this one.
        return revoke_jobs(self.client, [self.id])[0]

    def forget(self) -> None:
        """Delete the job's hash and results."""
        self.client.redis.delete(keys.JOB.format(self.id), keys.RESULTS.format(self.id))

    def _outcome(self, snap: JobSnapshot, state: str, propagate: bool) -> Any:
        if state == "SUCCESS":
            return entry_return_value(snap.result)
        error: Exception = self._failure(snap) if state == "FAILURE" else TaskRevoked(f"task {self.id} was revoked")
        if propagate:
            raise error
        return error

    def _failure(self, snap: JobSnapshot) -> TaskFailed:
        traceback = entry_traceback(snap.result)
        return rebuild(self.id, snap.get("tr_exc_type", "Exception"), snap.get("tr_exc_message"), traceback)


def _parent_of(ids: list[str], client: Client | None) -> Any:
    """A flow step's parent handle from its ``dependency_ids``: one result, or a ``ResultSet`` for a group."""
    if not ids:
        return None
    if len(ids) == 1:
        return AsyncResult(ids[0], client)
    return ResultSet([AsyncResult(i, client) for i in ids], client)
