"""RQ's dependency rules for plain RQ jobs (Queue.enqueue(..., depends_on=...)) run by workers.Worker.

The order is checked by the start and end times the tasks record (tests/tasks_rq.py).
"""

from __future__ import annotations

import subprocess

import pytest
import redis
from rq import Queue
from rq.job import Dependency, Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from tests import tasks_rq as t
from tests.conftest import Processes, live_workers, wait_for

# One job per claim, so that two workers run two parents side by side.
ENV = {"TASKRAIL_IMPORTS": "tests.tasks_rq", "TASKRAIL_MAX_BATCH": "1"}
STEP, FLAKY = "tests.tasks_rq.step", "tests.tasks_rq.flaky"


@pytest.fixture
def queue(conn: redis.Redis) -> Queue:
    return Queue("rqdeps", connection=conn, serializer=JSONSerializer)


def _start_workers(procs: Processes, conn: redis.Redis, count: int = 1) -> list[subprocess.Popen[bytes]]:
    started = [procs.worker("rqdeps", env=ENV, name=f"worker{n}") for n in range(count)]
    wait_for(lambda: len(live_workers(conn)) == count, 15, what="worker heartbeats")
    return started


def _time(conn: redis.Redis, name: str, edge: str) -> float:
    value = conn.hget(t.TIMES, f"{name}:{edge}")
    return float(value) if value else 0.0


def _ended(job: Job, status: str) -> bool:
    job.refresh()
    return job.get_status(refresh=False) == status and job.ended_at is not None


def test_a_job_on_two_parents_starts_only_after_both_ended(settings, procs, conn: redis.Redis, queue: Queue) -> None:
    _start_workers(procs, conn, 2)
    fast = queue.enqueue(STEP, "fast", 0.2)
    slow = queue.enqueue(STEP, "slow", 1.0)
    child = queue.enqueue(STEP, "child", depends_on=[fast, slow])
    assert child.get_status() == "deferred"
    wait_for(lambda: _ended(slow, "finished") and _ended(child, "finished"), 15, what="the slow parent, the dependent")
    assert _time(conn, "child", "start") >= max(_time(conn, "fast", "end"), _time(conn, "slow", "end"))


def test_allow_failure_runs_the_dependent_after_its_parent_failed(
    settings, procs, conn: redis.Redis, queue: Queue
) -> None:
    conn.set(t.FAIL_FLAG.format("parent"), 1)
    parent = queue.enqueue(FLAKY, "parent")
    allows = queue.enqueue(STEP, "allows", depends_on=Dependency(jobs=[parent], allow_failure=True))
    strict = queue.enqueue(STEP, "strict", depends_on=parent)
    _start_workers(procs, conn)
    wait_for(lambda: _ended(allows, "finished"), 15, what="the dependent that allows failure finished")
    assert parent.get_status(refresh=True) == "failed"
    assert _time(conn, "allows", "start") >= _time(conn, "parent", "end")
    assert strict.get_status(refresh=True) == "deferred" and not _time(conn, "strict", "start")


def test_a_failed_parent_leaves_its_dependent_deferred_until_requeued(
    settings, procs, conn: redis.Redis, queue: Queue
) -> None:
    conn.set(t.FAIL_FLAG.format("parent"), 1)
    parent = queue.enqueue(FLAKY, "parent")
    child = queue.enqueue(STEP, "child", depends_on=parent)
    _start_workers(procs, conn)
    wait_for(lambda: _ended(parent, "failed"), 15, what="the parent failed")
    assert child.get_status(refresh=True) == "deferred" and child.id in queue.deferred_job_registry.get_job_ids()
    conn.delete(t.FAIL_FLAG.format("parent"))
    FailedJobRegistry(queue=queue).requeue(parent.id)  # what `rq requeue` does
    wait_for(lambda: _ended(child, "finished"), 15, what="the dependent ran once its requeued parent finished")
    assert parent.get_status(refresh=True) == "finished"


def test_cancel_with_enqueue_dependents_runs_them_without_the_parent(
    settings, procs, conn: redis.Redis, queue: Queue
) -> None:
    parent = queue.enqueue(STEP, "parent")
    released = queue.enqueue(STEP, "released", depends_on=parent)
    kept = queue.enqueue(STEP, "kept")
    waiting = queue.enqueue(STEP, "waiting", depends_on=kept)
    kept.cancel()  # RQ's default: its dependents stay deferred
    parent.cancel(enqueue_dependents=True)
    _start_workers(procs, conn)
    wait_for(lambda: _ended(released, "finished"), 15, what="the canceled parent's dependent ran")
    assert parent.get_status(refresh=True) == "canceled" and not _time(conn, "parent", "start")
    assert waiting.get_status(refresh=True) == "deferred" and not _time(conn, "waiting", "start")


def test_a_parent_canceled_while_it_runs_leaves_its_dependent_deferred(
    settings, procs, conn: redis.Redis, queue: Queue
) -> None:
    _start_workers(procs, conn)
    parent = queue.enqueue(STEP, "parent", 1.0)
    child = queue.enqueue(STEP, "child", depends_on=parent)
    wait_for(lambda: _time(conn, "parent", "start"), 15, what="the parent started")
    parent.cancel()
    wait_for(lambda: _time(conn, "parent", "end") and conn.hexists(f"rq:job:{parent.id}", "ended_at"), 15,
             what="the parent settled")  # fmt: skip
    assert child.get_status(refresh=True) == "deferred" and not _time(conn, "child", "start")
