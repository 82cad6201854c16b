"""RQ's own Retry against real workers: Retry(max, interval) given to Queue.enqueue, and a Retry returned
by the task, with the status, retries_left / number_of_retries, registries and results RQ 3 writes."""

from __future__ import annotations

import time

import pytest
import redis
from rq import Callback, Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.results import Result
from rq.serializers import JSONSerializer

from tests import tasks_rqretry as t
from tests.conftest import Processes, live_workers, wait_for

MODES = {"inline": {}, "fork": {"TASKRAIL_ISOLATION": "fork"}}


@pytest.fixture
def queue(settings, conn: redis.Redis) -> Queue:
    return Queue("rqretry", connection=conn, serializer=JSONSerializer)


def _start(procs: Processes, conn: redis.Redis, mode: str = "inline") -> None:
    procs.worker("rqretry", env={"TASKRAIL_IMPORTS": "tests.tasks_rqretry", **MODES[mode]})
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")


def _ended(conn: redis.Redis, job: Job, status: JobStatus) -> Job:
    """The job once it has the final ``status``, fetched afresh."""
    wait_for(lambda: job.get_status(refresh=True) == status, 20, what=f"job {job.id} {status}")
    return Job.fetch(job.id, connection=conn, serializer=JSONSerializer)


def _runs(conn: redis.Redis, key: str) -> int:
    return int(conn.get(key) or 0)


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_job_is_retried_until_it_succeeds(mode: str, procs: Processes, conn: redis.Redis,
                                                     queue: Queue) -> None:  # fmt: skip
    _start(procs, conn, mode)
    job = queue.enqueue(t.flaky, f"runs:{mode}", 2, retry=Retry(max=3))
    done = _ended(conn, job, JobStatus.FINISHED)
    assert _runs(conn, f"runs:{mode}") == 3 and done.retries_left == 1
    assert done.return_value() == "ok" and done.latest_result().type == Result.Type.SUCCESSFUL
    worker = conn.hgetall(next(iter(conn.smembers("rq:workers"))))
    assert worker[b"failed_job_count"] == b"2" and worker[b"successful_job_count"] == b"1"  # as RQ counts


def test_a_job_whose_retries_run_out_fails(settings, procs: Processes, conn: redis.Redis, queue: Queue) -> None:
    _start(procs, conn)
    job = queue.enqueue(t.flaky, "runs", 99, retry=Retry(max=2))
    done = _ended(conn, job, JobStatus.FAILED)
    assert _runs(conn, "runs") == 3 and done.retries_left == 0
    assert job.id in FailedJobRegistry(queue=queue) and "ZeroDivisionError" in done.latest_result().exc_string
    assert [r.type for r in done.results()] == [Result.Type.FAILED]  # RQ writes no result for a retried failure


def test_on_failure_runs_on_every_failure_of_a_retried_job(settings, procs: Processes, conn: redis.Redis,
                                                            queue: Queue) -> None:  # fmt: skip
    """RQ runs the failure callback before it decides to retry (Worker.handle_exception path)."""
    _start(procs, conn)
    job = queue.enqueue(t.flaky, "runs", 99, retry=Retry(max=1), on_failure=Callback(t.note_failure))
    _ended(conn, job, JobStatus.FAILED)
    wait_for(lambda: conn.llen("failures") == 2, 10, what="two failure callbacks")
    assert conn.lrange("failures", 0, -1) == [f"{job.id}:ZeroDivisionError".encode()] * 2


def test_retry_intervals_schedule_the_job_in_rqs_scheduled_registry(settings, procs: Processes, conn: redis.Redis,
                                                                    queue: Queue) -> None:  # fmt: skip
    _start(procs, conn)
    registry = ScheduledJobRegistry(queue=queue)
    before = time.time()
    job = queue.enqueue(t.flaky, "runs", 99, retry=Retry(max=2, interval=[300, 600]))
    _ended(conn, job, JobStatus.SCHEDULED)
    assert job.id in registry and Job.fetch(job.id, connection=conn, serializer=JSONSerializer).retries_left == 1
    assert before + 300 <= registry.get_scheduled_time(job).timestamp() <= time.time() + 300
    registry.schedule(job, registry.get_scheduled_time(job).replace(year=2020))  # due now: the worker promotes it
    wait_for(lambda: _runs(conn, "runs") == 2, 20, what="second run")
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.SCHEDULED and job.id in registry, 20,
             what="second schedule")  # fmt: skip
    assert registry.get_scheduled_time(job).timestamp() >= before + 600  # intervals[1], as RQ picks it


@pytest.mark.parametrize("mode", MODES)
def test_a_returned_retry_runs_the_job_again_up_to_its_max(mode: str, procs: Processes, conn: redis.Redis,
                                                          queue: Queue) -> None:  # fmt: skip
    _start(procs, conn, mode)
    job = queue.enqueue(t.again, f"runs:{mode}", 2)
    done = _ended(conn, job, JobStatus.FAILED)
    assert _runs(conn, f"runs:{mode}") == 3 and done.number_of_retries == 2
    types = [r.type for r in reversed(done.results())]
    assert types == [Result.Type.RETRIED, Result.Type.RETRIED, Result.Type.MAX_RETRIES_EXCEEDED]
    assert job.id in FailedJobRegistry(queue=queue) and done.latest_result().execution_id


def test_a_returned_retry_with_an_interval_is_scheduled(settings, procs: Processes, conn: redis.Redis,
                                                       queue: Queue) -> None:  # fmt: skip
    _start(procs, conn)
    job = queue.enqueue(t.again, "runs", 1, 300)
    done = _ended(conn, job, JobStatus.SCHEDULED)
    assert job.id in ScheduledJobRegistry(queue=queue) and done.number_of_retries == 1
    assert done.latest_result().type == Result.Type.RETRIED and _runs(conn, "runs") == 1
