"""``isolation: fork``: run each job in a child process (a work-horse), for CPU-heavy or leaky tasks.

The worker waits for the child; its time limit, a revoke, RQ's stop-job or kill-horse command or the
shutdown deadline (raised in the waiting worker by the interrupter) kill the child, with those outcomes.
A child that dies on its own under the live worker (OOM killer, SIGKILL, a crash in C code) fails its
job with ``WorkerLostError``, as RQ ("Work-horse terminated unexpectedly"), Celery (without
``reject_on_worker_lost``) and BullMQ's sandboxed processors do: through the usual failure path, so the
task's retry policy and RQ's ``Retry`` apply, ``on_failure`` runs and dependents with ``allow_failure``
are released. A task with Celery's ``reject_on_worker_lost=True`` has such a job put back in its queue
instead, as a stall, until it has stalled ``max_stalled`` times, then it fails. (A whole worker that
dies is another matter: the leader's recovery requeues its jobs, tasks/core/lua/reap.lua.)
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import time
from collections.abc import Callable
from dataclasses import replace

from config.errors import TaskRevoked, TaskTimeout, WorkerLostError
from tasks import signals
from tasks.core.protocol import DATA_ERRORS, decode_data
from tasks.core.registry import lookup
from workers.exitcodes import RET_CHILD_ERROR
from workers.runner import (
    ClaimedJob,
    HorseKilled,
    Interrupted,
    JobStopped,
    Outcome,
    classify_error,
    failed_outcome,
    operator_stop,
)

__all__ = ["run_forked"]


def run_forked(job: ClaimedJob, run: Callable[[], Outcome], max_stalled: int) -> Outcome:
    """Run ``run`` in a forked child and return its outcome; see the module docstring for deaths."""
    read_fd, write_fd = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the work-horse
        os.close(read_fd)
        _child(run, write_fd)
    try:  # a stop may land as soon as the child exists: from here on it kills the child
        os.close(write_fd)
        payload = _read_all(read_fd)
        _, status = os.waitpid(pid, 0)
    except (TaskTimeout, TaskRevoked, Interrupted, JobStopped, HorseKilled) as stop:
        _kill(pid)
        with contextlib.suppress(OSError):  # closed already when the stop landed after the close
            os.close(write_fd)
        os.close(read_fd)
        return _stopped(job, stop, time.perf_counter() - started)
    os.close(read_fd)
    if payload and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        outcome: Outcome = pickle.loads(payload)
        return outcome
    return horse_died(job, _cause(status), max_stalled, time.perf_counter() - started)


def horse_died(job: ClaimedJob, cause: str, max_stalled: int, duration: float) -> Outcome:
    """The outcome of a job whose work-horse died on its own (``cause``: how): it fails with
    ``WorkerLostError`` through the task's retry policy, or, for a task with ``reject_on_worker_lost=True``,
    goes back to its queue as a stall."""
    name = _task_name(job)
    task = lookup(name) if name else None
    if task is not None and task.options.extra.get("reject_on_worker_lost"):
        return stalled(job, f"its work-horse process died ({cause})", max_stalled, duration)
    error = WorkerLostError(
        f"Work-horse terminated unexpectedly ({cause}) while running job {job.id}; the job failed. "
        "Give its task reject_on_worker_lost=True to put such a job back in its queue instead"
    )
    if task is None:
        return failed_outcome(job, name, error, duration)
    return classify_error(job, task, error, duration)  # retried if autoretry_for covers WorkerLostError


def _cause(status: int) -> str:
    """How a work-horse ended, from its wait status: ``signal 9 (SIGKILL)`` or ``exit code 3``."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"signal {number} ({signal.Signals(number).name})"
        except ValueError:
            return f"signal {number}"
    return f"exit code {os.WEXITSTATUS(status)}"


def stalled(job: ClaimedJob, why: str, max_stalled: int, duration: float) -> Outcome:
    """Back to the queue as a stall, or failed once it stalled more than ``max_stalled`` times."""
    stalls = job.stalls + 1
    if stalls > max_stalled:
        message = f"job stalled {stalls} times ({why}); max_stalled is {max_stalled}"
        return Outcome(job, "fail", "", "", job.failure_ttl, 0.0, "JobStalled", message, duration)
    return Outcome(job, "requeue", exc_type="stalled", exc_message=why, duration_s=duration)


def _child(run: Callable[[], Outcome], write_fd: int) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(signum, signal.SIG_DFL)
    code = 0
    try:
        signals.send(signals.worker_process_init, None)
        data = pickle.dumps(replace(run(), error=None, value=None))  # an exception may not survive pickling
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)
    except BaseException:  # nothing may escape a forked child into the worker's own code
        code = RET_CHILD_ERROR
    finally:
        os._exit(code)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _stopped(job: ClaimedJob, stop: BaseException, duration: float) -> Outcome:
    if isinstance(stop, Interrupted):
        return Outcome(job, "requeue", exc_type="interrupted", duration_s=duration)
    if isinstance(stop, TaskRevoked):
        return Outcome(job, "revoked", ttl=job.failure_ttl, duration_s=duration)
    if isinstance(stop, (JobStopped, HorseKilled)):
        return operator_stop(job, _task_name(job), stop, duration)
    error = TaskTimeout(f"job {job.id} passed its time limit of {job.timeout}s; its work-horse was killed")
    task = lookup(_task_name(job))
    if task is None:
        return Outcome(job, "fail", "", "", job.failure_ttl, 0.0, "TaskTimeout", str(error), duration)
    return classify_error(job, task, error, duration)  # retried if autoretry_for covers TaskTimeout


def _task_name(job: ClaimedJob) -> str:
    """The name of the job's task ("" for a job whose data cannot be read)."""
    try:
        return decode_data(job.data)[0] if not job.poison else ""
    except DATA_ERRORS:
        return ""
